// The demo page: two inputs (file, drop or the sample pair), one fusion on WebGPU, a before/after slider.
// Plain ES module over moefusion/web (dist/web/moefusion.js, built by `npm run build:web`).
// URL parameters, for links and tests: ?sample (load the sample pair), ?size=WxH (exact work size), ?autorun (fuse
// once both images are there). window.moefusionDemo exposes the state and the last run (inputs and float output).
import { Fuser, imageFrom, targetSize, hasWebGPU, adapterInfo, BROWSER_ADVICE, NoAdapterError } from '../dist/web/moefusion.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const WEIGHTS = new URL('../weights/moefusion.safetensors', location.href);
const SAMPLE = { ir: new URL('../samples/ir/00537D.png', location.href), vi: new URL('../samples/vi/00537D.png', location.href) };
const ROLE_NAME = { ir: 'infrared', vi: 'visible' };

/** The inputs as picked (decoded at their own size) and the state tests read. */
const slots = { ir: null, vi: null };
const demo = (window.moefusionDemo = { state: 'starting', error: null, lastRun: null, runs: 0 });
let fuserPromise = null;
let lastFused = null;

function setState(state) {
  demo.state = state;
  document.body.dataset.state = state;
}

/** A message that stays while nothing can work (no WebGPU); other messages replace it only while they last. */
let fatal = '';

function showError(message) {
  const text = message || fatal;
  const box = $('error');
  box.textContent = text;
  box.hidden = !text;
  demo.error = text || null;
}

function status(text, progress) {
  $('status').textContent = text;
  const bar = $('progress');
  bar.hidden = progress === undefined;
  if (progress !== undefined) bar.value = progress;
}

function describe(e) {
  return (e && e.message) || String(e);
}

// ---- the work size ---------------------------------------------------------------------------------------------

const exactSize = (() => {
  const m = /^(\d+)x(\d+)$/.exec(params.get('size') ?? '');
  return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
})();
if (exactSize) {
  const opt = new Option(`${exactSize.width}×${exactSize.height} (from the URL)`, 'url', true, true);
  $('size').add(opt, 0);
}

function workSize(width, height) {
  const choice = $('size').value;
  if (choice === 'url' && exactSize) return exactSize;
  const max = Number(choice);
  if (!max || Math.max(width, height) <= max) return { width, height };
  return width >= height ? targetSize(width, height, { width: max }) : targetSize(width, height, { height: max });
}

// ---- inputs ----------------------------------------------------------------------------------------------------

function drawThumb(role, image) {
  const zone = $(`drop-${role}`);
  const canvas = zone.querySelector('.thumb');
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.byteLength), image.width, image.height), 0, 0);
  canvas.hidden = false;
  zone.querySelector('.drop-hint').hidden = true;
}

/** Decodes a picked File/Blob into its slot; a file that is not an image is refused with a message. */
async function setInput(role, blob, name) {
  const zone = $(`drop-${role}`);
  zone.classList.remove('bad');
  try {
    const image = await imageFrom(blob, { name });
    slots[role] = { image, name };
    drawThumb(role, image);
    zone.querySelector('.drop-meta').textContent = `${name} · ${image.width}×${image.height}`;
  } catch (e) {
    slots[role] = null;
    zone.classList.add('bad');
    zone.querySelector('.thumb').hidden = true;
    zone.querySelector('.drop-hint').hidden = false;
    zone.querySelector('.drop-meta').textContent = name;
    showError(`The ${ROLE_NAME[role]} image cannot be used: ${describe(e)}.\nChoose a PNG, JPEG, WebP, BMP or GIF file.`);
    return updateReady();
  }
  showError('');
  updateReady();
}

/** Enables Fuse when both images are there and agree in size; says what is wrong otherwise. */
function updateReady() {
  const { ir, vi } = slots;
  let ok = !!(ir && vi) && hasWebGPU();
  if (ir && vi && (ir.image.width !== vi.image.width || ir.image.height !== vi.image.height)) {
    ok = false;
    showError(
      `The images differ in size: infrared ${ir.image.width}×${ir.image.height} (${ir.name}), visible ${vi.image.width}×${vi.image.height} (${vi.name}).\n` +
        'A pair must show the same scene at the same size, registered pixel for pixel. Choose a matching pair.',
    );
  }
  $('fuse').disabled = !ok || demo.state === 'fusing';
  if (ok && params.has('autorun') && demo.runs === 0 && demo.state !== 'fusing') fuse();
  return ok;
}

for (const role of ['ir', 'vi']) {
  const zone = $(`drop-${role}`);
  const input = $(`file-${role}`);
  input.addEventListener('change', () => {
    const file = input.files && input.files[0];
    if (file) setInput(role, file, file.name);
    input.value = '';
  });
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    const files = [...(ev.dataTransfer?.files ?? [])];
    if (files.length >= 2 && role === 'ir') {
      // Two files dropped together: the first is the infrared, the second the visible image.
      setInput('ir', files[0], files[0].name);
      setInput('vi', files[1], files[1].name);
    } else if (files.length) setInput(role, files[0], files[0].name);
  });
}

async function loadSample() {
  status('loading the sample pair…');
  try {
    const [ir, vi] = await Promise.all([SAMPLE.ir, SAMPLE.vi].map(async (url) => {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${url.pathname}: HTTP ${res.status}`);
      return res.blob();
    }));
    await setInput('ir', ir, 'sample ir/00537D.png');
    await setInput('vi', vi, 'sample vi/00537D.png');
    status('');
  } catch (e) {
    showError(`The sample pair could not be loaded: ${describe(e)}`);
    status('');
  }
}
$('sample').addEventListener('click', loadSample);

// ---- the fuser -------------------------------------------------------------------------------------------------

function getFuser() {
  fuserPromise ??= (async () => {
    status('loading the weights (17 MB) and starting WebGPU…', 0);
    const fuser = await Fuser.create({ weights: WEIGHTS });
    const info = adapterInfo();
    $('adapter').textContent = `WebGPU adapter: ${info.name}${info.isSoftware ? ' (software)' : ''}`;
    $('hint').hidden = !info.isSoftware;
    status('');
    return fuser;
  })();
  fuserPromise.catch(() => (fuserPromise = null));
  return fuserPromise;
}

async function fuse() {
  const { ir, vi } = slots;
  if (!ir || !vi || demo.state === 'fusing') return;
  setState('fusing');
  $('fuse').disabled = true;
  showError('');
  try {
    const fuser = await getFuser();
    const size = workSize(ir.image.width, ir.image.height);
    const [irIn, viIn] = await Promise.all([imageFrom(toImageData(ir.image), size), imageFrom(toImageData(vi.image), size)]);
    const color = $('color').checked;
    const range = $('range').value;
    status(`fusing ${size.width}×${size.height}…`, 0);
    const started = performance.now();
    const fused = await fuser.fuse(irIn, viIn, { color, range, onStage: (stage, done, total) => status(`fusing ${size.width}×${size.height}: ${stage}`, done / total) });
    const ms = performance.now() - started;
    demo.runs++;
    lastFused = { fused, name: ir.name };
    show(viIn, fused);
    const info = adapterInfo();
    const first = demo.runs === 1 ? ' (the first run includes compiling the GPU kernels)' : '';
    $('timing').textContent = `Fused ${size.width}×${size.height} in ${(ms / 1000).toFixed(2)} s on ${info.name}${info.isSoftware ? ' (software)' : ''}${first}.`;
    demo.lastRun = { width: size.width, height: size.height, ms, color, range, adapter: info, ir: plain(irIn), vi: plain(viIn), fused: fused.data };
    status('');
    setState('done');
  } catch (e) {
    status('');
    showError(e instanceof NoAdapterError ? `WebGPU is not available: ${describe(e)}` : `The fusion failed: ${describe(e)}`);
    setState('error');
  } finally {
    $('fuse').disabled = !updateReady();
  }
}
$('fuse').addEventListener('click', fuse);

function toImageData(image) {
  return { width: image.width, height: image.height, data: new Uint8ClampedArray(image.data.buffer, image.data.byteOffset, image.data.byteLength) };
}

function plain(image) {
  return { width: image.width, height: image.height, channels: image.channels, data: image.data };
}

// ---- the result: before/after slider and download ------------------------------------------------------------------

function paint(canvas, imageData) {
  canvas.width = imageData.width;
  canvas.height = imageData.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(imageData.data), imageData.width, imageData.height), 0, 0);
}

function show(visible, fused) {
  paint($('before'), toImageData(visible));
  paint($('after'), fused.toImageData());
  $('result').hidden = false;
  // Small images are shown at least 640 px wide (smoothly scaled), large ones at most the page's width.
  $('compare').style.maxWidth = `${Math.max(640, visible.width)}px`;
  setSplit(Number($('slider').value));
}

function setSplit(percent) {
  $('compare').style.setProperty('--split', `${percent}%`);
}
$('slider').addEventListener('input', (ev) => setSplit(Number(ev.target.value)));

$('download').addEventListener('click', async () => {
  if (!lastFused) return;
  const png = await lastFused.fused.toPNG();
  const url = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = `fused-${lastFused.name.replace(/^sample /, '').replace(/[^\w.-]+/g, '_').replace(/\.\w+$/, '')}.png`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
});

// ---- start -----------------------------------------------------------------------------------------------------

if (!hasWebGPU()) {
  fatal = `This browser has no WebGPU, which the fusion runs on.\n${BROWSER_ADVICE}.`;
  showError('');
  setState('no-webgpu');
  $('fuse').disabled = true;
} else {
  setState('ready');
  getFuser().catch((e) => {
    if (e instanceof NoAdapterError) fatal = `WebGPU is not available: ${describe(e)}`;
    showError(fatal || `The network could not be loaded: ${describe(e)}`);
    setState('error');
  });
}
if (params.has('sample')) loadSample();
