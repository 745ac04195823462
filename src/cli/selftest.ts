/**
 * `moefusion selftest [--json] [--fixture FILE] [--only NAME,…] [--list]`: checks the kernels and the whole network
 * on the current adapter (src/check/selftest.ts). Exit 0 when every check passes, 1 when one fails (its name on
 * stderr), 2 for a usage error, 3 without a GPU adapter.
 */
import { Command } from 'commander';
import { checkNames, formatCheck, runSelftest, selectChecks } from '../check/selftest.ts';
import { FixtureError, PARITY_FIXTURE, readParityFixture } from '../check/parity.ts';
import { UsageError, UserError } from './errors.ts';
import { initEngine } from '../tensor/engine.ts';
import { adapterName } from '../runtime/device.ts';

interface SelftestArgs {
  json?: boolean;
  fixture?: string;
  only?: string;
  list?: boolean;
}

export function selftestCommand(): Command {
  return new Command('selftest')
    .description('check the kernels (against float64) and the whole network (against PyTorch) on this GPU; exit 1 if a check fails')
    .option('--json', 'print the report as JSON on stdout')
    .option('--fixture <file>', 'the PyTorch parity fixture', PARITY_FIXTURE)
    .option('--only <names>', 'only the checks whose name contains one of these (comma-separated), e.g. conv,attention')
    .option('--list', 'list the checks and exit')
    .action(async (o: SelftestArgs) => {
      if (o.list) {
        process.stdout.write(checkNames().join('\n') + '\n');
        return;
      }
      const only = o.only?.split(',').map((s) => s.trim()).filter(Boolean);
      const selected = selectChecks(only);
      if (!selected.length) throw new UsageError(`--only ${o.only}: no check's name contains it (see --list)`);
      // Read the fixture first, so that a missing one fails at once rather than after the kernel checks.
      if (selected.some((n) => n.startsWith('network')))
        try {
          readParityFixture(o.fixture);
        } catch (e) {
          if (e instanceof FixtureError) throw new UserError(`--fixture ${e.message}`);
          throw e;
        }
      if (!o.json) {
        const s = (await initEngine()).rt.handle.summary;
        process.stdout.write(`selftest on ${adapterName(s)} (${s.backend}${s.isSoftware ? ', software' : ''}): ${selected.length} checks\n`);
      }
      const report = await runSelftest({
        fixture: o.fixture,
        only,
        onCheck: o.json ? undefined : (r) => process.stdout.write(formatCheck(r) + '\n'),
      });
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else
        process.stdout.write(
          `${report.passed} of ${report.checks.length} checks passed in ${report.seconds.toFixed(1)} s (features: ${report.adapter.features.join(', ') || 'none'}; ${report.adapter.subgroupLanes ? `subgroups of ${report.adapter.subgroupLanes} lanes` : 'portable kernels'})\n`,
        );
      // Exit code 1 (a UserError) and one line on stderr naming the failed checks.
      const failed = report.checks.filter((c) => !c.pass).map((c) => c.name);
      if (failed.length) throw new UserError(`selftest: ${failed.length} of ${report.checks.length} checks failed: ${failed.join('; ')}`);
    });
}
