/**
 * Plain references for augmentation, written from torchvision's code:
 * - RandomResizedCrop.get_params (torchvision/transforms/transforms.py), line by line;
 * - ToTensor + Normalize(mean, std) after an optional horizontal flip, in float64.
 */

/** The generator interface torch's calls map to: uniform_(a, b) and randint(lo, hi). */
export interface TorchLikeRng {
  uniform(lo: number, hi: number): number;
  int(lo: number, hi: number): number;
}

/** Python 3's round(): ties go to the even integer. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Returns [i, j, h, w] like torchvision: i = top, j = left. */
export function getParams(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: TorchLikeRng,
): [number, number, number, number] {
  const area = height * width;
  const log_ratio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let _ = 0; _ < 10; _++) {
    const target_area = area * rng.uniform(scale[0], scale[1]);
    const aspect_ratio = Math.exp(rng.uniform(log_ratio[0]!, log_ratio[1]!));
    const w = pyRound(Math.sqrt(target_area * aspect_ratio));
    const h = pyRound(Math.sqrt(target_area / aspect_ratio));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const i = rng.int(0, height - h + 1);
      const j = rng.int(0, width - w + 1);
      return [i, j, h, w];
    }
  }
  // Fallback to central crop
  const in_ratio = width / height;
  let w: number;
  let h: number;
  if (in_ratio < Math.min(...ratio)) {
    w = width;
    h = pyRound(w / Math.min(...ratio));
  } else if (in_ratio > Math.max(...ratio)) {
    h = height;
    w = pyRound(h * Math.max(...ratio));
  } else {
    // whole image
    w = width;
    h = height;
  }
  const i = Math.floor((height - h) / 2);
  const j = Math.floor((width - w) / 2);
  return [i, j, h, w];
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** [B*H*W, 3] rows, row = (b*H + y)*W + x, from B x H x W x C bytes. */
export function flipNormalizeRef(
  pixels: Uint8Array,
  flips: ArrayLike<number>,
  B: number,
  H: number,
  W: number,
  C: number,
): Float64Array {
  const out = new Float64Array(B * H * W * 3);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const xs = flips[b] ? W - 1 - x : x;
        const row = (b * H + y) * W + x;
        for (let c = 0; c < 3; c++) {
          const v = pixels[((b * H + y) * W + xs) * C + c]! / 255;
          out[row * 3 + c] = (v - MEAN[c]!) / STD[c]!;
        }
      }
    }
  }
  return out;
}
