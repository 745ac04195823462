/**
 * Breaks one kernel on purpose, for tests of `moefusion selftest`: loaded with `node --import tsx --import
 * ./test/helpers/break-kernel.ts …`, it reads MOEFUSION_TEST_BREAK_KERNEL = {"label", "find", "replace"} (JSON) and
 * replaces `find` by `replace` in the WGSL of every kernel with that label before it is compiled. At exit it says on
 * stderr if no kernel was rewritten, so that a test cannot pass by breaking nothing.
 */
import { setKernelRewriteForTests } from '../../src/runtime/pipeline-cache.ts';

const spec = process.env.MOEFUSION_TEST_BREAK_KERNEL;
if (spec) {
  const { label, find, replace } = JSON.parse(spec) as { label: string; find: string; replace: string };
  let rewritten = 0;
  setKernelRewriteForTests((code, name) => {
    if (name !== label || !code.includes(find)) return code;
    rewritten++;
    return code.split(find).join(replace);
  });
  process.on('exit', () => {
    if (!rewritten) process.stderr.write(`break-kernel: no kernel '${label}' containing ${JSON.stringify(find)} was compiled\n`);
  });
}
