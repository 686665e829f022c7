/**
 * The page: for now it finds WebGPU and reports the adapter (name, software or hardware,
 * limits), or says what to do when there is none. Training moves into a Web Worker driven
 * through comlink (see docs/architecture.md).
 */
import { createBrowserGpu } from '../platform/browser/gpu.ts';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function showAdapter(section: HTMLElement): Promise<void> {
  const body = el('div');
  try {
    const gpu = await createBrowserGpu();
    const a = gpu.adapter;
    const list = el('dl');
    const add = (k: string, v: string) => list.append(el('dt', k), el('dd', v));
    add('adapter', [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || '(unnamed)');
    add('features', a.features.join(', '));
    for (const [k, v] of Object.entries(a.limits)) add(k, String(v));
    if (a.isFallbackAdapter) {
      body.append(
        el('p', 'This is a software (CPU) adapter: everything works, but training is slow. ' +
          'Use a small model, input size and batch, or a browser with hardware WebGPU.', 'warning'),
      );
    }
    body.append(list);
    gpu.destroy();
  } catch (err) {
    body.append(el('p', (err as Error).message, 'error'));
  }
  section.querySelector('p')?.remove();
  section.append(body);
}

void showAdapter(document.getElementById('adapter')!);
