/**
 * The interactive masking demo panel: pick one of the held-out photos (never trained on) or
 * the training previews' images, or drop your own; click or drag on the patch grid to hide or
 * reveal patches, draw a random mask at a ratio, invert it; the worker reconstructs at once
 * with the shipped demo model, the model being trained or an imported checkpoint (webspark's
 * or an official SparK `.pth` / `.safetensors`), and the panel shows the reconstruction, the
 * composite, a per-patch error map and the masked-patch loss.
 *
 * It opens working: when the build holds the shipped model (its card is read at build time,
 * see vite.config.ts), the first held-out photo, a random mask at ratio 0.6 and that model are
 * chosen and drawn the first time the panel is on screen, with no click. Reconstructions run
 * only while the panel is on screen.
 *
 * The page keeps the chosen picture as a canvas of any size and resamples it to the model's
 * input size when the model changes; only the normalized pixels and the mask go to the worker.
 */
import type { Remote } from 'comlink';
import type { TrainerHost } from '../worker/trainer-worker.ts';
import type { DemoModelInfo, DemoResult } from '../worker/demo-host.ts';
import type { Preview } from '../train/trainer.ts';
import { DEMO_MODEL_PATH, DEMO_PHOTOS_DIR, DEMO_PHOTOS_LIST, formatHeldOut, type DemoModelCard, type DemoPhoto } from '../models/demo-model.ts';
import { IMAGENET_MEAN as MEAN, IMAGENET_STD as STD } from '../data/imagenet.ts';
import { denormalize, drawImage } from './images.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** The shipped model's card, read from public/ when the page was built (null: none shipped). */
declare const __DEMO_MODEL_CARD__: DemoModelCard | null;
const SHIPPED_CARD: DemoModelCard | null = typeof __DEMO_MODEL_CARD__ === 'undefined' ? null : __DEMO_MODEL_CARD__;
const url = (path: string) => new URL(path, document.baseURI).href;

export interface DemoPanel {
  /** A new training preview: its images become choosable (the first one is picked if none is). */
  onPreview(p: Preview): void;
  /** The run changed (started, resumed): the model being trained may be new. */
  refreshModel(): Promise<void>;
}

export function initDemo(host: Remote<TrainerHost>): DemoPanel {
  const view = new DemoView(host);
  view.wirePainting();
  view.wireControls();
  return view;
}

/** The panel's state (the model, the picture, the mask) and what the page does with it. */
class DemoView implements DemoPanel {
  private readonly grid = $<HTMLCanvasElement>('demo-grid');
  private readonly pick = $<HTMLSelectElement>('demo-image');
  private readonly errorText = $('demo-error-text');
  private readonly section = $('demo');
  private info: DemoModelInfo | null = null;
  private source: HTMLCanvasElement | null = null;
  private previews: HTMLCanvasElement[] = [];
  private photos: DemoPhoto[] = [];
  private image: Float32Array | null = null;
  private visible = new Uint8Array(0);
  private busy = false;
  private dirty = false;
  private renders = 0;
  /** The demo works only while its panel is on screen: no reconstructions (and no main-thread drawing) in the background. */
  private onScreen = false;
  private stale = true;
  /** The opening (held-out photos, the shipped model), started the first time the panel is on screen. */
  private opened: Promise<void> | null = null;

  constructor(private readonly host: Remote<TrainerHost>) {
    describeShipped();
    new IntersectionObserver((entries) => {
      this.onScreen = entries.some((e) => e.isIntersecting);
      if (this.onScreen) void this.wake().catch((e: unknown) => this.fail(e));
    }).observe(this.section);
  }

  /** A new training preview: its images become choosable (the first one is picked if none is). */
  onPreview(p: Preview): void {
    this.previews = Array.from({ length: p.batch }, (_, b) => {
      const c = document.createElement('canvas');
      c.width = c.height = p.size;
      c.getContext('2d')!.putImageData(new ImageData(denormalize(p.original, b, p.size), p.size, p.size), 0, 0);
      return c;
    });
    const keep = this.pick.value;
    this.pick.replaceChildren(...this.imageOptions());
    this.pick.value = keep;
    if (!this.source && this.onScreen) void this.wake().catch((e: unknown) => this.fail(e));
  }

  /** The run changed (started, resumed): the model being trained may be new. */
  async refreshModel(): Promise<void> {
    this.stale = true;
    if (this.onScreen) await this.wake();
  }

  private fail(e: unknown): void {
    this.errorText.textContent = (e as Error).message;
    this.errorText.hidden = false;
  }

  /** The source picture resampled to the model's input size, ImageNet-normalized. */
  private sample(): void {
    const { source, info } = this;
    if (!source || !info) return void (this.image = null);
    const s = info.inputSize;
    const c = document.createElement('canvas');
    c.width = c.height = s;
    const g = c.getContext('2d')!;
    // Centre square crop, as the data pipeline's evaluation view.
    const side = Math.min(source.width, source.height);
    g.drawImage(source, (source.width - side) / 2, (source.height - side) / 2, side, side, 0, 0, s, s);
    const rgba = g.getImageData(0, 0, s, s).data;
    const image = new Float32Array(s * s * 3);
    for (let p = 0; p < s * s; p++) for (let k = 0; k < 3; k++) image[p * 3 + k] = (rgba[p * 4 + k]! / 255 - MEAN[k]!) / STD[k]!;
    this.image = image;
  }

  private drawGrid(): void {
    const { image, info, grid, visible } = this;
    if (!image || !info) return;
    const s = info.inputSize;
    const f = info.fmap;
    drawImage(grid, image, 0, s);
    const g = grid.getContext('2d')!;
    const cell = s / f;
    g.fillStyle = 'rgba(40, 40, 40, 0.8)';
    for (let p = 0; p < f * f; p++) if (!visible[p]) g.fillRect((p % f) * cell, Math.floor(p / f) * cell, cell, cell);
    g.strokeStyle = 'rgba(255, 255, 255, 0.6)';
    g.lineWidth = Math.max(1, s / 256);
    for (let i = 1; i < f; i++) {
      g.beginPath();
      g.moveTo(i * cell, 0);
      g.lineTo(i * cell, s);
      g.moveTo(0, i * cell);
      g.lineTo(s, i * cell);
      g.stroke();
    }
    grid.dataset.visible = String(visible.reduce((a, b) => a + b, 0));
    // The mask as `webspark reconstruct --mask` takes it (row-major, 1 = visible).
    grid.dataset.mask = visible.join('');
  }

  /** Asks the worker for a reconstruction; while one runs, later changes coalesce into one more. */
  async reconstruct(): Promise<void> {
    this.drawGrid();
    if (!this.image || !this.info) return;
    if (this.busy) return void (this.dirty = true);
    this.busy = true;
    try {
      do {
        this.dirty = false;
        const drawnWith = this.info.source;
        const mask = this.visible.join('');
        this.show(await this.host.demoReconstruct(this.image, this.visible), drawnWith, mask);
      } while (this.dirty);
    } catch (e) {
      this.fail(e);
    } finally {
      this.busy = false;
    }
  }

  private show(r: DemoResult, drawnWith: string, mask: string): void {
    drawImage($<HTMLCanvasElement>('demo-rec'), r.reconstruction, 0, r.size);
    drawImage($<HTMLCanvasElement>('demo-composite'), r.composite, 0, r.size);
    drawError($<HTMLCanvasElement>('demo-error'), r.patchError, r.fmap);
    const loss = $('demo-loss');
    loss.textContent = `masked-patch loss on this image and mask: ${r.loss.toFixed(4)}`;
    loss.dataset.loss = String(r.loss);
    const rec = $('demo-rec');
    rec.dataset.renders = String(++this.renders);
    // Which model drew it, so a test can wait for a model's first reconstruction.
    rec.dataset.source = drawnWith;
    // The mask it was drawn for (as the grid's data-mask): a change made while it was being
    // computed is drawn by the next one.
    rec.dataset.mask = mask;
    // A fingerprint of the reconstruction, so a test can see it change.
    rec.dataset.sum = r.composite.reduce((a, b) => a + b, 0).toFixed(3);
    this.errorText.hidden = true;
  }

  randomMask(): void {
    const n = this.visible.length;
    const ratio = Math.min(1, Math.max(0, Number($<HTMLInputElement>('demo-ratio').value) || 0));
    const keep = Math.round(n * (1 - ratio));
    const order = [...Array(n).keys()];
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    this.visible = new Uint8Array(n);
    for (const i of order.slice(0, keep)) this.visible[i] = 1;
  }

  invertMask(): void {
    this.visible = this.visible.map((v) => 1 - v);
  }

  async setModel(next: DemoModelInfo | null): Promise<void> {
    const { info } = this;
    const changed = !info || !next || next.fmap !== info.fmap || next.inputSize !== info.inputSize;
    this.info = next;
    $('demo-model').textContent = next ? `model: ${next.model} @${next.inputSize}px from ${next.source}` : 'model: none yet (start a run or import a checkpoint)';
    $('demo-about').hidden = next?.source !== SHIPPED_SOURCE;
    if (!next) return;
    if (changed) {
      this.visible = new Uint8Array(next.fmap * next.fmap);
      this.randomMask();
    }
    this.sample();
    await this.reconstruct();
  }

  choose(canvas: HTMLCanvasElement): void {
    this.source = canvas;
    this.sample();
    void this.reconstruct();
  }

  /** An option of the image list: `h<i>` a held-out photo, `p<i>` a training preview image. */
  async chooseOption(value: string): Promise<void> {
    const i = Number(value.slice(1));
    const photo = value[0] === 'h' ? this.photos[i] : undefined;
    $('demo-credit').replaceChildren();
    if (photo) {
      this.choose(await photoCanvas(photo));
      showCredit(photo);
    } else if (value[0] === 'p' && this.previews[i]) this.choose(this.previews[i]);
  }

  private imageOptions(): HTMLOptionElement[] {
    return [
      ...this.photos.map((p, i) => new Option(`held-out: ${p.key}`, `h${i}`)),
      ...this.previews.map((_, b) => new Option(`preview image ${b + 1}`, `p${b}`)),
      new Option('(your own image)', ''),
    ];
  }

  async ownImage(file: File): Promise<void> {
    try {
      const bitmap = await createImageBitmap(file);
      const c = document.createElement('canvas');
      c.width = bitmap.width;
      c.height = bitmap.height;
      c.getContext('2d')!.drawImage(bitmap, 0, 0);
      bitmap.close();
      this.pick.value = '';
      this.choose(c);
    } catch {
      this.fail(new Error(`${file.name}: not an image this browser can decode`));
    }
  }

  /**
   * The first time the panel is on screen: the held-out photos, the first of them and the
   * shipped model, drawn with no click. Not before: a visitor who came to train downloads no
   * model and spends no GPU time on a panel they have not looked at.
   */
  private async open(): Promise<void> {
    // The model loads in the worker while the page fetches and decodes the photo.
    const shipped = SHIPPED_CARD ? this.host.demoUseShipped(url(DEMO_MODEL_PATH), false).catch((e: unknown) => (this.fail(e), null)) : null;
    try {
      const response = await fetch(url(DEMO_PHOTOS_LIST));
      if (!response.ok) throw new Error(`the demo's photo list ${DEMO_PHOTOS_LIST}: HTTP ${response.status}`);
      this.photos = (await response.json()) as DemoPhoto[];
      this.pick.replaceChildren(...this.imageOptions());
      if (this.photos[0]) {
        this.pick.value = 'h0';
        await this.chooseOption('h0');
      }
    } catch (e) {
      this.fail(e);
    }
    const model = shipped ? await shipped : null;
    if (!model) return;
    this.stale = false;
    await this.setModel(model);
  }

  private async wake(): Promise<void> {
    this.opened ??= this.open().catch((e: unknown) => this.fail(e));
    await this.opened;
    if (!this.source && this.previews[0]) {
      this.pick.value = 'p0';
      this.source = this.previews[0];
    }
    if (this.stale) {
      this.stale = false;
      await this.setModel(await this.host.demoModel());
    } else {
      this.sample();
      await this.reconstruct();
    }
  }

  /** Painting on the grid: the first patch touched decides whether the drag hides or reveals. */
  wirePainting(): void {
    const grid = this.grid;
    let paint: number | null = null;
    const patchAt = (e: PointerEvent) => {
      const info = this.info;
      if (!info) return -1;
      const r = grid.getBoundingClientRect();
      const x = Math.floor(((e.clientX - r.left) / r.width) * info.fmap);
      const y = Math.floor(((e.clientY - r.top) / r.height) * info.fmap);
      return x >= 0 && y >= 0 && x < info.fmap && y < info.fmap ? y * info.fmap + x : -1;
    };
    grid.addEventListener('pointerdown', (e) => {
      const p = patchAt(e);
      if (p < 0) return;
      grid.setPointerCapture(e.pointerId);
      paint = this.visible[p] ? 0 : 1;
      this.visible[p] = paint;
      void this.reconstruct();
    });
    grid.addEventListener('pointermove', (e) => {
      const p = patchAt(e);
      if (paint === null || p < 0 || this.visible[p] === paint) return;
      this.visible[p] = paint;
      void this.reconstruct();
    });
    const endPaint = () => void (paint = null);
    grid.addEventListener('pointerup', endPaint);
    grid.addEventListener('pointercancel', endPaint);
  }

  /** The mask buttons, the image list, dropped and chosen files, the model choices. */
  wireControls(): void {
    const fail = (e: unknown) => this.fail(e);
    $('demo-random').onclick = () => {
      this.randomMask();
      void this.reconstruct();
    };
    $('demo-invert').onclick = () => {
      this.invertMask();
      void this.reconstruct();
    };
    this.pick.onchange = () => void this.chooseOption(this.pick.value).catch(fail);
    $<HTMLInputElement>('demo-file').onchange = (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (f) void this.ownImage(f);
    };
    this.section.addEventListener('dragover', (e) => e.preventDefault());
    this.section.addEventListener('drop', (e) => {
      e.preventDefault();
      const f = [...(e.dataTransfer?.files ?? [])].find((x) => x.type.startsWith('image/'));
      if (f) void this.ownImage(f);
    });
    $<HTMLInputElement>('demo-checkpoint').onchange = async (e) => {
      const f = (e.target as HTMLInputElement).files?.[0];
      if (!f) return;
      try {
        const bytes = new Uint8Array(await f.arrayBuffer());
        await this.setModel(await this.host.demoImport(bytes, f.name));
      } catch (err) {
        fail(err);
      }
    };
    $('demo-use-trainer').onclick = async () => this.setModel(await this.host.demoUseTrainer());
    $('demo-use-shipped').onclick = async () => this.setModel(await this.host.demoUseShipped(url(DEMO_MODEL_PATH), true)).catch(fail);
  }
}

/** Who took a held-out photo, where it comes from and under which licence. */
function showCredit(p: DemoPhoto): void {
  const credits = document.createElement('a');
  credits.href = url(`${DEMO_PHOTOS_DIR}/CREDITS.md`);
  credits.textContent = 'credits';
  $('demo-credit').append(`held-out photo (never trained on): ${p.file.split('/').pop()} from Debian's ${p.package}, ${p.licence}, by ${p.author} (`, credits, ')');
}

const SHIPPED_SOURCE = 'the shipped demo model';

/** What the shipped model is and what it was trained on (from its card), or that the build has none. */
function describeShipped(): void {
  const about = $('demo-about');
  $('demo-use-shipped').hidden = !SHIPPED_CARD;
  if (!SHIPPED_CARD) {
    about.textContent = `No demo model ships with this build (public/${DEMO_MODEL_PATH} is missing): start a run or import a checkpoint to see reconstructions.`;
    about.hidden = false;
    return;
  }
  const c = SHIPPED_CARD;
  about.textContent = `Shown: the shipped demo model, ${c.title}: SparK ${c.model} with a LightDecoder of width ${c.decoderWidth}, ` +
    `pre-trained by webspark for ${c.steps} steps at batch ${c.batchSize} on ${c.data}. Trained on: ${c.hardware}.` +
    (/stop-gap/i.test(c.hardware + c.title) ? ' It is a CPU stop-gap, to be replaced by a model trained on a GPU.' : '') +
    ` Held-out loss ${formatHeldOut(c.heldOut)}.`;
  about.dataset.heldOut = String(c.heldOut.mean);
}

/** A held-out photo as a canvas (its full size; the panel crops and resamples it). */
async function photoCanvas(p: DemoPhoto): Promise<HTMLCanvasElement> {
  const img = new Image();
  img.src = url(`${DEMO_PHOTOS_DIR}/${p.key}.jpg`);
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  c.getContext('2d')!.drawImage(img, 0, 0);
  return c;
}

/** The per-patch error as a heat map (dark: well reconstructed, bright: not), one cell a patch. */
function drawError(canvas: HTMLCanvasElement, err: Float32Array, fmap: number): void {
  canvas.width = canvas.height = fmap;
  const max = Math.max(1e-6, ...err);
  const px = new Uint8ClampedArray(fmap * fmap * 4);
  for (let p = 0; p < fmap * fmap; p++) {
    const v = err[p]! / max;
    px.set([Math.round(255 * v), Math.round(120 * v), Math.round(255 * (1 - v) * 0.3), 255], p * 4);
  }
  canvas.getContext('2d')!.putImageData(new ImageData(px, fmap, fmap), 0, 0);
  canvas.dataset.max = max.toPrecision(3);
}
