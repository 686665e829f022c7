/**
 * A line chart of one series per step (loss; also lr and gradient norm): raw values faint, an exponential moving average bold (debiased as
 * TensorBoard does, so the first points are not pulled towards zero), drawn on a <canvas>.
 * Redraws are coalesced to one per animation frame, so a fast run cannot flood the page.
 */
export class LossChart {
  private values: number[] = [];
  private queued = false;

  /** `smoothing` 0 draws the raw series only (for lr and gradient norm); `unit` names the x axis. */
  constructor(private canvas: HTMLCanvasElement, private smoothing = 0.9, private unit = 'step') {}

  get length(): number {
    return this.values.length;
  }

  set(step: number, loss: number): void {
    this.values[step] = loss;
    this.request();
  }

  reset(values: number[] = []): void {
    this.values = values.slice();
    this.request();
  }

  setSmoothing(s: number): void {
    this.smoothing = Math.min(Math.max(s, 0), 0.999);
    this.request();
  }

  /** The smoothed series (finite points only; NaN where a step has no value). */
  smoothed(): number[] {
    const out: number[] = [];
    let ema = 0;
    let n = 0;
    for (const v of this.values) {
      if (v === undefined || !Number.isFinite(v)) {
        out.push(NaN);
        continue;
      }
      ema = this.smoothing * ema + (1 - this.smoothing) * v;
      n++;
      out.push(ema / (1 - this.smoothing ** n));
    }
    return out;
  }

  private request(): void {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.draw();
    });
  }

  private draw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 600;
    const h = c.clientHeight || 200;
    if (c.width !== Math.round(w * dpr)) c.width = Math.round(w * dpr);
    if (c.height !== Math.round(h * dpr)) c.height = Math.round(h * dpr);
    const g = c.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pts = this.values.map((v, i) => [i, v] as const).filter(([, v]) => v !== undefined && Number.isFinite(v));
    c.dataset.points = String(pts.length);
    if (pts.length === 0) return;
    const pad = { l: 48, r: 8, t: 8, b: 20 };
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, v] of pts) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (hi - lo < 1e-6) {
      hi += 0.5;
      lo -= 0.5;
    }
    const n = Math.max(this.values.length - 1, 1);
    const x = (i: number) => pad.l + (i / n) * (w - pad.l - pad.r);
    const y = (v: number) => pad.t + (1 - (v - lo) / (hi - lo)) * (h - pad.t - pad.b);
    g.strokeStyle = '#dde2e7';
    g.fillStyle = '#56616d';
    g.font = '11px system-ui, sans-serif';
    g.lineWidth = 1;
    // Enough digits that the three grid labels differ.
    const digits = Math.min(6, Math.max(2, Math.ceil(-Math.log10(hi - lo)) + 2));
    for (const v of [lo, (lo + hi) / 2, hi]) {
      g.beginPath();
      g.moveTo(pad.l, y(v));
      g.lineTo(w - pad.r, y(v));
      g.stroke();
      g.fillText(Math.abs(v) < 1e-2 && v !== 0 ? v.toExponential(2) : v.toFixed(digits), 2, y(v) + 4);
    }
    g.fillText(`${this.unit} ${this.values.length}`, w - pad.r - 60, h - 4);
    const line = (series: (readonly [number, number])[], style: string, width: number) => {
      g.strokeStyle = style;
      g.lineWidth = width;
      g.beginPath();
      series.forEach(([i, v], k) => (k === 0 ? g.moveTo(x(i), y(v)) : g.lineTo(x(i), y(v))));
      g.stroke();
    };
    if (this.smoothing === 0) return line(pts, 'rgb(30, 90, 180)', 1.5);
    line(pts, 'rgba(40, 110, 200, 0.25)', 1);
    const sm = this.smoothed();
    line(sm.map((v, i) => [i, v] as const).filter(([, v]) => Number.isFinite(v)), 'rgb(30, 90, 180)', 2);
  }
}
