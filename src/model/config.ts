/** The fusion network's configuration. Defaults reproduce the reference at 640×480. */
export interface FusionConfig {
  /** Experts per mixture (the reference: 4). */
  experts: number;
  /** Experts chosen per image (the reference: 2). */
  k: number;
  /** Grid the local gates see: the 32-channel map is resized to this (120×160 = ¼ of 480×640). */
  localGate: [height: number, width: number];
  /** Grid the global gate sees: the 160-channel map is resized to this (60×80 = ⅛ of 480×640). */
  globalGate: [height: number, width: number];
  /** Auxiliary load-balancing coefficients of the foreground, background and global gates. */
  auxCoef: { fg: number; bg: number; global: number };
  /** Weight of the Sobel gradient loss. */
  gradWeight: number;
  /** Weight of the box-masked pixel loss. */
  pixelWeight: number;
}

export const DEFAULT_CONFIG: FusionConfig = {
  experts: 4,
  k: 2,
  localGate: [120, 160],
  globalGate: [60, 80],
  auxCoef: { fg: 0.01, bg: 0.01, global: 0.02 },
  gradWeight: 10,
  pixelWeight: 1,
};

/** The `moefusion.config` metadata of a weights file (shared with bench/reference/moe_fusion.py). */
export interface StoredConfig {
  local_grid: [number, number];
  global_grid: [number, number];
  num_experts: number;
  k: number;
  local_coef: number;
  global_coef: number;
  grad_weight: number;
  pixel_weight: number;
}

/** Largest gate grid accepted from a file: 4× the reference's in each direction (the gate matrices grow with it). */
const MAX_GATE_SIDE = 1024;

/**
 * The configuration in a weights file's `moefusion.config` metadata (the reference's when absent), every field
 * checked; `source` names the file in errors (a ConfigError).
 */
export function configFromMetadata(json: string | undefined, source = 'weights'): FusionConfig {
  if (!json) return DEFAULT_CONFIG;
  let c: Partial<Record<keyof StoredConfig, unknown>>;
  try {
    c = JSON.parse(json);
  } catch (e) {
    throw new ConfigError(source, `'moefusion.config' metadata is not valid JSON (${(e as Error).message})`);
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw new ConfigError(source, `'moefusion.config' metadata must be a JSON object`);
  const int = (key: keyof StoredConfig, fallback: number, min: number, max: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw new ConfigError(source, `'moefusion.config' ${key} is ${JSON.stringify(v)}; expected an integer in [${min}, ${max}]`);
    return v;
  };
  const num = (key: keyof StoredConfig, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new ConfigError(source, `'moefusion.config' ${key} is ${JSON.stringify(v)}; expected a non-negative number`);
    return v;
  };
  const grid = (key: 'local_grid' | 'global_grid', fallback: [number, number]): [number, number] => {
    const v = c[key] ?? fallback;
    if (!Array.isArray(v) || v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= 1 && d <= MAX_GATE_SIDE))
      throw new ConfigError(source, `'moefusion.config' ${key} is ${JSON.stringify(v)}; expected [height, width], integers in [1, ${MAX_GATE_SIDE}]`);
    return [v[0], v[1]];
  };
  const experts = int('num_experts', DEFAULT_CONFIG.experts, 2, MAX_CONFIG_EXPERTS);
  if (experts % 2) throw new ConfigError(source, `'moefusion.config' num_experts is ${experts}; the local mixtures need an even count (half per modality)`);
  const localCoef = num('local_coef', DEFAULT_CONFIG.auxCoef.fg);
  return {
    experts,
    k: int('k', DEFAULT_CONFIG.k, 1, experts),
    localGate: grid('local_grid', DEFAULT_CONFIG.localGate),
    globalGate: grid('global_grid', DEFAULT_CONFIG.globalGate),
    auxCoef: { fg: localCoef, bg: localCoef, global: num('global_coef', DEFAULT_CONFIG.auxCoef.global) },
    gradWeight: num('grad_weight', DEFAULT_CONFIG.gradWeight),
    pixelWeight: num('pixel_weight', DEFAULT_CONFIG.pixelWeight),
  };
}

/** MoE-Fusion's mixtures split the local experts between the two modalities: an even count, at most 64. */
const MAX_CONFIG_EXPERTS = 64;

export class ConfigError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
  }
}

export function configToMetadata(c: FusionConfig): string {
  const stored: StoredConfig = {
    local_grid: c.localGate,
    global_grid: c.globalGate,
    num_experts: c.experts,
    k: c.k,
    local_coef: c.auxCoef.fg,
    global_coef: c.auxCoef.global,
    grad_weight: c.gradWeight,
    pixel_weight: c.pixelWeight,
  };
  return JSON.stringify(stored);
}
