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

export const LOCAL_CHANNELS = 32; // cat(v, i) of the 16-channel encodings
export const GLOBAL_CHANNELS = 160; // cat(x_dense_vis, x_dense_ir, y_fg, y_bg)

export function localGateInputs(c: FusionConfig): number {
  return LOCAL_CHANNELS * c.localGate[0] * c.localGate[1];
}

export function globalGateInputs(c: FusionConfig): number {
  return GLOBAL_CHANNELS * c.globalGate[0] * c.globalGate[1];
}

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

export function configFromMetadata(json: string | undefined): FusionConfig {
  if (!json) return DEFAULT_CONFIG;
  const c = JSON.parse(json) as Partial<StoredConfig>;
  return {
    experts: c.num_experts ?? DEFAULT_CONFIG.experts,
    k: c.k ?? DEFAULT_CONFIG.k,
    localGate: c.local_grid ?? DEFAULT_CONFIG.localGate,
    globalGate: c.global_grid ?? DEFAULT_CONFIG.globalGate,
    auxCoef: {
      fg: c.local_coef ?? DEFAULT_CONFIG.auxCoef.fg,
      bg: c.local_coef ?? DEFAULT_CONFIG.auxCoef.bg,
      global: c.global_coef ?? DEFAULT_CONFIG.auxCoef.global,
    },
    gradWeight: c.grad_weight ?? DEFAULT_CONFIG.gradWeight,
    pixelWeight: c.pixel_weight ?? DEFAULT_CONFIG.pixelWeight,
  };
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
