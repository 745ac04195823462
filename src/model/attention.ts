/**
 * Att at inference: which foreground map the fusion network takes when fusing. Weights record the one they were
 * trained with (metadata `moefusion.attention`), so that `auto` fuses as the network learnt: the detectors' map when
 * the weights carry detectors, else the recorded mode (the infrared saliency for the shipped weights), else 0.5.
 */
export const ATTENTION_CHOICES = ['auto', 'detector', 'saliency', 'none'] as const;
export type AttentionChoice = (typeof ATTENTION_CHOICES)[number];
export type InferenceAttention = Exclude<AttentionChoice, 'auto'>;

export const ATTENTION_METADATA_KEY = 'moefusion.attention';

/** The inference attention matching a training attention mode (boxes: none, since fusing has no boxes). */
export function inferenceAttention(trainingMode: string): InferenceAttention {
  return trainingMode === 'detector' || trainingMode === 'saliency' ? trainingMode : 'none';
}

/** What `auto` means for weights: their detectors, else their recorded mode, else none. */
export function resolveAttention(choice: AttentionChoice, hasDetector: boolean, metadata: Record<string, string>): InferenceAttention {
  if (choice !== 'auto') return choice;
  if (hasDetector) return 'detector';
  const recorded = metadata[ATTENTION_METADATA_KEY];
  return recorded === 'saliency' ? 'saliency' : 'none';
}
