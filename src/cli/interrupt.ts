/**
 * Ctrl-C (SIGINT) and SIGTERM while a command runs: the temporary files being written and the folders the command
 * created that hold nothing are removed (io/atomic.ts), one line says so, and the process exits 130 (143 for
 * SIGTERM), as a shell reports a process that a signal ended. Complete outputs stay.
 */
import { cleanUpOutputs } from '../io/atomic.ts';
import { EXIT_INTERRUPTED, EXIT_TERMINATED } from './errors.ts';

/** Installs the handlers; returns their removal. `exit` is process.exit (tests pass their own). */
export function handleInterrupts(exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const handler = (signal: 'SIGINT' | 'SIGTERM', code: number) => () => {
    cleanUpOutputs(true);
    if (process.stderr.isTTY) process.stderr.write('\n'); // below a progress bar
    process.stderr.write(`moefusion: interrupted (${signal}); no partial output was left\n`);
    exit(code);
  };
  const onInt = handler('SIGINT', EXIT_INTERRUPTED);
  const onTerm = handler('SIGTERM', EXIT_TERMINATED);
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}
