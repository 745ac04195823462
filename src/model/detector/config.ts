/**
 * Shape of the auxiliary detectors (docs/moe-fusion.md §1, "this project"): per modality a compact backbone with
 * four stages (strides 2, 4, 8, 16) and an FPN over the last three, the shared cross-modal interaction and the
 * per-modality spatial attention exactly as the reference, and a CenterNet-style head shared by the FPN levels.
 * The reference uses 256 FPN channels (ResNet-50); the default here is narrower so that it trains from scratch on
 * a software GPU. The attention's hidden width is half the FPN width, as the reference's 256→128.
 */
export interface DetectorConfig {
  classes: string[];
  /** Output channels of the four backbone stages (strides 2, 4, 8, 16). */
  backbone: [number, number, number, number];
  /** FPN width (the reference's 256). */
  fpn: number;
  /** Hidden width of the head. */
  head: number;
}

export const MODALITIES = ['vis', 'ir'] as const;
export type Modality = (typeof MODALITIES)[number];

/** M3FD's six classes. */
export const M3FD_CLASSES = ['People', 'Car', 'Bus', 'Motorcycle', 'Lamp', 'Truck'];

/** FPN levels P2, P3, P4 and their strides; Att comes from P2 (stride 4). */
export const LEVEL_STRIDES = [4, 8, 16];

export const DEFAULT_DETECTOR_CONFIG: DetectorConfig = {
  classes: M3FD_CLASSES,
  backbone: [16, 32, 64, 96],
  fpn: 64,
  head: 64,
};

export const DETECTOR_METADATA_KEY = 'moefusion.detector';

export function detectorConfigFromJson(json: string, source: string): DetectorConfig {
  let c: Partial<Record<keyof DetectorConfig, unknown>>;
  try {
    c = JSON.parse(json);
  } catch {
    throw new Error(`${source}: the detector configuration is not valid JSON`);
  }
  const positive = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
  const { classes, backbone, fpn, head } = c;
  if (!Array.isArray(classes) || classes.length === 0 || !classes.every((s) => typeof s === 'string'))
    throw new Error(`${source}: the detector configuration needs a non-empty list of class names`);
  if (!Array.isArray(backbone) || backbone.length !== 4 || !backbone.every(positive)) throw new Error(`${source}: the detector's backbone must be four positive channel counts`);
  if (!positive(fpn) || !positive(head) || fpn % 2 !== 0) throw new Error(`${source}: the detector's fpn (even) and head widths must be positive integers`);
  return { classes, backbone: backbone as DetectorConfig['backbone'], fpn, head };
}
