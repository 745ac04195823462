/** Problems of a training run the user can act on (its data, its options, its checkpoint): shown as they are. */
export class TrainingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}
