/** Worker side of ScorePool: scores the fused images of one source pair per message. */
import { parentPort } from 'node:worker_threads';
import { getProtocol } from './protocols.ts';
import type { ScoreJob, ScoreReply } from './score-pool.ts';

const port = parentPort!;
port.on('message', (job: ScoreJob) => {
  let reply: ScoreReply;
  try {
    const protocol = getProtocol(job.protocol);
    reply = { id: job.id, values: job.fused.map((fused) => protocol.score(fused, job.ir, job.vi)) };
  } catch (e) {
    reply = { id: job.id, error: (e as Error).message };
  }
  port.postMessage(reply);
});
