/**
 * The `moefusion` command line. Run it with `npx moefusion …` (bin/moefusion.mjs) or `npm run cli -- …`.
 * Every failure ends in one line `moefusion: <message>` on stderr and a non-zero exit code (see errors.ts).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { hasEngine, setDeviceDefaults, shutdownEngine } from '../tensor/engine.ts';
import { cleanUpOutputs, resetOutputs } from '../io/atomic.ts';
import { EXIT_USAGE, reportFatal, UsageError } from './errors.ts';
import { handleInterrupts } from './interrupt.ts';
import { infoCommand } from './info.ts';
import { fuseCommand } from './fuse.ts';
import { trainCommand } from './train.ts';
import { evalCommand } from './eval.ts';
import { benchCommand } from './bench.ts';
import { synthCommand } from './synth.ts';
import { detectCommand } from './detect.ts';
import { selftestCommand } from './selftest.ts';
import { exportCommand } from './export.ts';

interface GlobalOptions {
  backend?: string;
  adapter?: string;
  verbose?: boolean;
}

function version(): string {
  return (JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
}

export async function buildProgram(): Promise<Command> {
  const program = new Command('moefusion')
    .description('MoE-Fusion infrared/visible image fusion on WebGPU')
    .version(version())
    .addOption(new Option('--backend <name>', 'WebGPU backend').choices(['vulkan', 'metal', 'd3d12', 'opengles', 'null']))
    .option('--adapter <name>', 'use the adapter whose name contains <name>')
    .option('--verbose', "also show the GPU driver's own messages (Dawn's adapter warnings)")
    .showSuggestionAfterError()
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`moefusion: ${text.replace(/^error: /, '')}`) });

  // Commands start the GPU themselves, once their arguments are checked (a usage error never waits for a device),
  // with the global device options. Dawn's own adapter warnings (software Vulkan) are hidden unless --verbose.
  program.hook('preAction', (_, command) => {
    const o = program.opts<GlobalOptions>();
    if (o.backend === 'null' && command.name() !== 'info')
      throw new UsageError(`--backend null runs no GPU code, so ${command.name()} would produce garbage; it is for \`moefusion info\` only`);
    setDeviceDefaults({ backend: o.backend, adapter: o.adapter, compatibility: o.backend === 'opengles', quiet: !o.verbose });
  });

  for (const cmd of [fuseCommand(), trainCommand(), detectCommand(), evalCommand(), benchCommand(), synthCommand(), exportCommand(), infoCommand(), selftestCommand()])
    program.addCommand(cmd.copyInheritedSettings(program));
  return program;
}

/**
 * Runs the CLI on argv (as process.argv: node, script, args…) and returns the exit code. Whatever the outcome, the
 * temporary files and the empty folders the command left are removed; Ctrl-C does the same and exits 130
 * (`exit` is called then: process.exit, or a test's own).
 */
export async function main(argv: string[] = process.argv, exit?: (code: number) => void): Promise<number> {
  resetOutputs();
  const stopHandling = handleInterrupts(exit);
  try {
    const program = await buildProgram();
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    // Commander has already printed its message (usage errors) or the help/version text.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT_USAGE;
    return reportFatal(e);
  } finally {
    stopHandling();
    cleanUpOutputs();
    resetOutputs(); // (after an interrupt whose exit did not end the process: tests)
    setDeviceDefaults(undefined);
    if (hasEngine()) shutdownEngine();
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  return !!script && existsSync(script) && realpathSync(script) === fileURLToPath(import.meta.url);
}

if (isEntryPoint()) process.exitCode = await main();
