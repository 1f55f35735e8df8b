import type { SeededRng } from '@s2cpnet/core';
import { Canvas, type Rgb } from './canvas';

/**
 * Scene painters of the synthetic aerial set. Each paints one overhead scene type onto a canvas, registering every
 * object it draws (so the masks are exact), and returns the facts its captions need beyond object counts (which are
 * taken from the finished object list, so a caption can never count an object that ended up hidden).
 *
 * Geometry is in units of `u = size / 64`, so the same scene scales to any image size.
 */

export const SCENE_TYPES = [
  'residential',
  'farmland',
  'parking',
  'river',
  'lake',
  'playground',
  'forest',
  'intersection',
] as const;
export type SceneType = (typeof SCENE_TYPES)[number];

export type Orientation = 'vertical' | 'horizontal';
export type RoofColor = 'red' | 'white' | 'blue';
export type CropColor = 'green' | 'yellow' | 'brown';

export type SceneFacts =
  | { scene: 'residential'; orientation: Orientation; buildingColor: RoofColor; side: 'left' | 'right' | 'both' }
  | { scene: 'farmland'; colors: CropColor[]; hasRoad: boolean }
  | { scene: 'parking'; lotPosition: 'left' | 'right' | 'middle'; buildingColor: RoofColor }
  | { scene: 'river'; orientation: Orientation; treeSides: number }
  | { scene: 'lake'; position: 'left' | 'right' | 'middle'; size: 'big' | 'small'; surround: 'trees' | 'grass' }
  | { scene: 'playground'; orientation: Orientation; buildingColor: RoofColor }
  | { scene: 'forest'; hasRoad: boolean; roadOrientation: Orientation }
  | { scene: 'intersection'; ground: 'grass' | 'bare'; buildingColor: RoofColor };

const COLORS = {
  grass: [92, 128, 68],
  bareLand: [164, 144, 110],
  soil: [128, 104, 76],
  forestFloor: [52, 76, 44],
  tree: [40, 92, 44],
  road: [120, 120, 124],
  roadLine: [226, 226, 214],
  water: [46, 86, 140],
  bridge: [176, 174, 166],
  track: [180, 72, 60],
  pitch: [72, 150, 72],
  pitchLine: [236, 236, 236],
  parking: [96, 96, 102],
  stallLine: [222, 222, 222],
  shadow: [36, 40, 32],
} as const satisfies Record<string, Rgb>;

const ROOF_COLORS: Record<RoofColor, Rgb> = { red: [174, 66, 56], white: [220, 220, 214], blue: [64, 98, 164] };
const CROP_COLORS: Record<CropColor, Rgb> = { green: [86, 152, 62], yellow: [208, 186, 98], brown: [150, 104, 62] };
const CAR_COLORS: readonly Rgb[] = [
  [234, 234, 234],
  [198, 40, 40],
  [40, 64, 178],
  [30, 30, 34],
  [170, 170, 176],
];

type Painter = (canvas: Canvas) => SceneFacts;

function between(rng: SeededRng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.next();
}

function intBetween(rng: SeededRng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

/** A flat-roofed or gabled building: roof in two shades (the ridge), a dark shadow on its lower-right sides. */
function paintBuilding(canvas: Canvas, x: number, y: number, w: number, h: number, color: RoofColor): void {
  const u = canvas.size / 64;
  const shadow = Math.max(1, Math.round(u));
  canvas.fillRect(x + shadow, y + shadow, x + w + shadow, y + h + shadow, COLORS.shadow, 0);
  const label = canvas.addObject('building', color);
  const base = canvas.jitter(ROOF_COLORS[color], 8);
  const light: Rgb = [base[0] * 1.08, base[1] * 1.08, base[2] * 1.08];
  const dark: Rgb = [base[0] * 0.86, base[1] * 0.86, base[2] * 0.86];
  if (w >= h) {
    canvas.fillRect(x, y, x + w, y + h / 2, light, label);
    canvas.fillRect(x, y + h / 2, x + w, y + h, dark, label);
  } else {
    canvas.fillRect(x, y, x + w / 2, y + h, light, label);
    canvas.fillRect(x + w / 2, y, x + w, y + h, dark, label);
  }
}

/** Tries to place a w x h building inside `region` on free ground; returns its box or null. */
function placeBuilding(
  canvas: Canvas,
  region: { x0: number; y0: number; x1: number; y1: number },
  color: RoofColor,
  sizeRange: [number, number],
  attempts = 40,
): { x: number; y: number; w: number; h: number } | null {
  const u = canvas.size / 64;
  const rng = canvas.rng;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const w = Math.round(between(rng, sizeRange[0], sizeRange[1]) * u);
    const h = Math.round(between(rng, sizeRange[0], sizeRange[1]) * u);
    if (region.x1 - region.x0 < w + 2 || region.y1 - region.y0 < h + 2) continue;
    const x = Math.round(between(rng, region.x0 + 1, region.x1 - w - 1));
    const y = Math.round(between(rng, region.y0 + 1, region.y1 - h - 1));
    if (!canvas.isFree(x, y, x + w + Math.max(1, Math.round(u)), y + h + Math.max(1, Math.round(u)), Math.round(1.5 * u))) {
      continue;
    }
    paintBuilding(canvas, x, y, w, h, color);
    return { x, y, w, h };
  }
  return null;
}

/** A round tree crown, brighter in the middle, with a shadow to the lower right. */
function paintTree(canvas: Canvas, cx: number, cy: number, radius: number): void {
  const u = canvas.size / 64;
  canvas.fillEllipse(cx + 0.8 * u, cy + 0.8 * u, radius, radius, COLORS.shadow, 0);
  const label = canvas.addObject('tree', 'green');
  const color = canvas.jitter(COLORS.tree, 10);
  canvas.fillEllipse(cx, cy, radius, radius, color, label, (dx, dy) => 1.25 - 0.35 * Math.sqrt(dx * dx + dy * dy) - 0.1 * (dx + dy));
}

/** Tries to place a tree on free ground within the box; returns whether it did. */
function placeTree(canvas: Canvas, x0: number, y0: number, x1: number, y1: number, attempts = 20): boolean {
  const u = canvas.size / 64;
  const rng = canvas.rng;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const radius = between(rng, 2, 3.2) * u;
    const cx = between(rng, x0 + radius, x1 - radius);
    const cy = between(rng, y0 + radius, y1 - radius);
    if (!canvas.isFree(cx - radius, cy - radius, cx + radius, cy + radius, 1)) continue;
    paintTree(canvas, cx, cy, radius);
    return true;
  }
  return false;
}

/** A straight road across the whole image with a dashed centre line when it is wide enough to show one. */
function paintStraightRoad(canvas: Canvas, orientation: Orientation, center: number, width: number, label: number): void {
  const s = canvas.size;
  const color = canvas.jitter(COLORS.road, 6);
  const a = center - width / 2;
  const b = center + width / 2;
  if (orientation === 'vertical') canvas.fillRect(a, 0, b, s, color, label);
  else canvas.fillRect(0, a, s, b, color, label);
  if (width >= 6) {
    const dash = Math.max(2, Math.round(s / 16));
    const c = Math.round(center - 0.5);
    for (let t = 0; t < s; t += 2 * dash) {
      for (let k = t; k < Math.min(s, t + dash); k++) {
        if (orientation === 'vertical') canvas.setPixel(c, k, COLORS.roadLine, label);
        else canvas.setPixel(k, c, COLORS.roadLine, label);
      }
    }
  }
}

const residential: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.grass);
  const orientation: Orientation = rng.next() < 0.5 ? 'vertical' : 'horizontal';
  const roadCenter = between(rng, 0.4, 0.6) * s;
  const roadWidth = 6 * u;
  paintStraightRoad(canvas, orientation, roadCenter, roadWidth, canvas.addObject('road', 'grey'));
  const mode = rng.pick(['left', 'right', 'both'] as const);
  const buildingColor = rng.pick(['red', 'white', 'blue'] as const);
  const target = intBetween(rng, 2, 6);
  // "left" of a horizontal road means above it: the same half of the coordinate range.
  const before = { lo: 0, hi: roadCenter - roadWidth / 2 - u };
  const after = { lo: roadCenter + roadWidth / 2 + u, hi: s };
  let placedBefore = 0;
  let placedAfter = 0;
  for (let i = 0; i < target; i++) {
    const useBefore = mode === 'left' || (mode === 'both' && i % 2 === 0);
    const band = useBefore ? before : after;
    const region =
      orientation === 'vertical' ? { x0: band.lo, y0: 0, x1: band.hi, y1: s } : { x0: 0, y0: band.lo, x1: s, y1: band.hi };
    if (placeBuilding(canvas, region, buildingColor, [7, 11])) {
      if (useBefore) placedBefore++;
      else placedAfter++;
    }
  }
  if (placedBefore + placedAfter === 0) {
    // Practically unreachable (the bands are ~25 px wide at 64 px), but a residential scene must show a building.
    paintBuilding(canvas, Math.round(before.lo + u), Math.round(u), Math.round(7 * u), Math.round(7 * u), buildingColor);
    placedBefore = 1;
  }
  if (rng.next() < 0.6) {
    const trees = intBetween(rng, 3, 6);
    for (let i = 0; i < trees; i++) placeTree(canvas, 0, 0, s, s);
  }
  const side = placedBefore > 0 && placedAfter > 0 ? 'both' : placedBefore > 0 ? 'left' : 'right';
  return { scene: 'residential', orientation, buildingColor, side };
};

const farmland: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.soil, 0.05);
  const layout = rng.pick([
    [1, 2],
    [2, 1],
    [1, 3],
    [3, 1],
    [2, 2],
    [2, 3],
    [3, 2],
    [3, 3],
  ] as const);
  const [cols, rows] = layout;
  const palette = rng.shuffle(['green', 'yellow', 'brown'] as CropColor[]).slice(0, rng.next() < 0.5 ? 1 : 2);
  const hasRoad = rows >= 2 && rng.next() < 0.4;
  const gap = Math.max(1, Math.round(1.5 * u));
  const roadWidth = 5 * u;
  // Row heights: equal shares of the height left after the gaps (and the road, which replaces the first gap).
  const gaps = (rows + 1) * gap + (hasRoad ? roadWidth - gap : 0);
  const rowHeight = (s - gaps) / rows;
  const colWidth = (s - (cols + 1) * gap) / cols;
  const pieces: Array<{ x: number; y: number; w: number; h: number }> = [];
  let y = gap;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) pieces.push({ x: gap + c * (colWidth + gap), y, w: colWidth, h: rowHeight });
    y += rowHeight + (hasRoad && r === 0 ? roadWidth : gap);
  }
  if (hasRoad) paintStraightRoad(canvas, 'horizontal', gap + rowHeight + roadWidth / 2, roadWidth - 2 * u, canvas.addObject('road', 'grey'));
  // Every colour of the palette appears at least once; the rest are drawn at random.
  const colors = pieces.map((_, i) => (i < palette.length ? palette[i]! : rng.pick(palette)));
  rng.shuffle(colors);
  pieces.forEach((piece, i) => {
    const color = colors[i]!;
    const label = canvas.addObject('farmland', color);
    const base = canvas.jitter(CROP_COLORS[color], 8);
    const stripesAlongX = rng.next() < 0.5;
    const period = Math.max(2, Math.round(2 * u));
    canvas.fillWhere(
      { x: piece.x, y: piece.y, width: piece.w, height: piece.h },
      () => true,
      (px, py) => {
        const gain = Math.floor((stripesAlongX ? py : px) / period) % 2 === 0 ? 1.06 : 0.94;
        return [base[0] * gain, base[1] * gain, base[2] * gain];
      },
      label,
    );
  });
  const order: CropColor[] = ['green', 'yellow', 'brown'];
  return { scene: 'farmland', colors: order.filter((c) => palette.includes(c)), hasRoad };
};

const parking: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.grass);
  const lotPosition = rng.pick(['left', 'right', 'middle'] as const);
  const stallWidth = 4 * u;
  const stallDepth = 7 * u;
  const stallsPerRow = intBetween(rng, 6, 8);
  const lotWidth = stallsPerRow * stallWidth + 2 * u;
  const lotHeight = 2 * stallDepth + 6 * u;
  const x0 = lotPosition === 'left' ? 2 * u : lotPosition === 'right' ? s - 2 * u - lotWidth : (s - lotWidth) / 2;
  const y0 = Math.round(between(rng, 0.1, 0.9) * (s - lotHeight));
  const lot = canvas.addObject('parking lot', 'grey');
  canvas.fillRect(x0, y0, x0 + lotWidth, y0 + lotHeight, canvas.jitter(COLORS.parking, 6), lot);
  const stalls: Array<{ x: number; y: number }> = [];
  for (const rowY of [y0 + u, y0 + lotHeight - u - stallDepth]) {
    for (let i = 0; i < stallsPerRow; i++) {
      const sx = x0 + u + i * stallWidth;
      stalls.push({ x: sx, y: rowY });
      canvas.fillRect(sx, rowY, sx + Math.max(1, Math.round(u / 2)), rowY + stallDepth, COLORS.stallLine, lot);
    }
  }
  // Small counts are the common case (their words are what a captioner can learn to count).
  const carCount = rng.pick([1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 12]);
  const chosen = rng.shuffle([...stalls]).slice(0, carCount);
  for (const stall of chosen) {
    const label = canvas.addObject('car', 'mixed');
    const color = canvas.jitter(rng.pick(CAR_COLORS), 6);
    const cx = stall.x + 0.9 * u;
    const cy = stall.y + 1.2 * u;
    canvas.fillRect(cx, cy, cx + 2.6 * u, cy + 4.6 * u, color, label);
    // windscreen
    canvas.fillRect(cx, cy + 1.2 * u, cx + 2.6 * u, cy + 2 * u, [color[0] * 0.55, color[1] * 0.55, color[2] * 0.6], label);
  }
  const buildingColor = rng.pick(['red', 'white', 'blue'] as const);
  if (rng.next() < 0.5) {
    const region =
      lotPosition === 'left'
        ? { x0: x0 + lotWidth + 2 * u, y0: 0, x1: s, y1: s }
        : lotPosition === 'right'
          ? { x0: 0, y0: 0, x1: x0 - 2 * u, y1: s }
          : y0 > s - y0 - lotHeight
            ? { x0: 0, y0: 0, x1: s, y1: y0 - u }
            : { x0: 0, y0: y0 + lotHeight + u, x1: s, y1: s };
    placeBuilding(canvas, region, buildingColor, [9, 14]);
  }
  return { scene: 'parking', lotPosition, buildingColor };
};

const river: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.grass);
  const orientation: Orientation = rng.next() < 0.5 ? 'vertical' : 'horizontal';
  const center = between(rng, 0.38, 0.62) * s;
  const amplitude = between(rng, 3, 7) * u;
  const period = between(rng, 0.9, 1.6) * s;
  const phase = between(rng, 0, 2 * Math.PI);
  const halfWidth = between(rng, 4, 5.5) * u;
  const axis = (along: number): number => center + amplitude * Math.sin((2 * Math.PI * along) / period + phase);
  const riverLabel = canvas.addObject('river', 'blue');
  const water = canvas.jitter(COLORS.water, 8);
  const across = (x: number, y: number): number => (orientation === 'vertical' ? x : y);
  const along = (x: number, y: number): number => (orientation === 'vertical' ? y : x);
  canvas.fillWhere(
    { x: 0, y: 0, width: s, height: s },
    (x, y) => Math.abs(across(x, y) - axis(along(x, y))) < halfWidth,
    (x, y) => {
      // Deeper (darker) water mid-stream.
      const depth = 1 - 0.12 * (1 - Math.abs(across(x + 0.5, y + 0.5) - axis(along(x + 0.5, y + 0.5))) / halfWidth);
      return [water[0] * depth, water[1] * depth, water[2] * depth];
    },
    riverLabel,
  );
  if (rng.next() < 0.45) {
    // A road crossing the river: its part over the water is the bridge.
    const roadAt = between(rng, 0.25, 0.75) * s;
    const width = 5 * u;
    const roadLabel = canvas.addObject('road', 'grey');
    const bridgeLabel = canvas.addObject('bridge', 'grey');
    const road = canvas.jitter(COLORS.road, 6);
    const bridge = canvas.jitter(COLORS.bridge, 6);
    const perpendicular: Orientation = orientation === 'vertical' ? 'horizontal' : 'vertical';
    for (let a = Math.round(roadAt - width / 2); a < Math.round(roadAt + width / 2); a++) {
      for (let t = 0; t < s; t++) {
        const [x, y] = perpendicular === 'horizontal' ? [t, a] : [a, t];
        const overWater = canvas.labelAt(x, y) === riverLabel;
        canvas.setPixel(x, y, overWater ? bridge : road, overWater ? bridgeLabel : roadLabel);
      }
    }
  }
  let treeSides = 0;
  if (rng.next() < 0.7) {
    const trees = intBetween(rng, 5, 9);
    const sidesUsed = new Set<number>();
    for (let i = 0; i < trees; i++) {
      const side = i % 2 === 0 ? -1 : 1;
      for (let attempt = 0; attempt < 15; attempt++) {
        const radius = between(rng, 2, 3) * u;
        const t = between(rng, radius, s - radius);
        const offset = halfWidth + radius + between(rng, 1, 5) * u;
        const a = axis(t) + side * offset;
        const [cx, cy] = orientation === 'vertical' ? [a, t] : [t, a];
        if (!canvas.isFree(cx - radius, cy - radius, cx + radius, cy + radius, 1)) continue;
        paintTree(canvas, cx, cy, radius);
        sidesUsed.add(side);
        break;
      }
    }
    treeSides = sidesUsed.size;
  }
  return { scene: 'river', orientation, treeSides };
};

const lake: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.grass);
  const position = rng.pick(['left', 'right', 'middle'] as const);
  const size = rng.pick(['big', 'small'] as const);
  let surround: 'trees' | 'grass' = rng.pick(['trees', 'grass'] as const);
  const radius = (size === 'big' ? between(rng, 15, 18) : between(rng, 8, 10.5)) * u;
  const offset = size === 'big' ? 0.13 : 0.2;
  const cx = (position === 'left' ? 0.5 - offset : position === 'right' ? 0.5 + offset : 0.5) * s;
  const cy = between(rng, 0.44, 0.56) * s;
  const aspect = between(rng, 0.8, 1.2);
  const p1 = between(rng, 0, 2 * Math.PI);
  const p2 = between(rng, 0, 2 * Math.PI);
  const boundary = (angle: number): number => radius * (1 + 0.1 * Math.sin(2 * angle + p1) + 0.07 * Math.sin(3 * angle + p2));
  const label = canvas.addObject('lake', 'blue');
  const water = canvas.jitter(COLORS.water, 8);
  canvas.fillWhere(
    { x: cx - 1.5 * radius, y: cy - 1.5 * radius, width: 3 * radius, height: 3 * radius },
    (x, y) => {
      const dx = (x - cx) / aspect;
      const dy = (y - cy) * aspect;
      return Math.hypot(dx, dy) < boundary(Math.atan2(dy, dx));
    },
    (x, y) => {
      const r = Math.hypot((x + 0.5 - cx) / aspect, (y + 0.5 - cy) * aspect) / radius;
      const depth = 0.88 + 0.12 * Math.min(1, r);
      return [water[0] * depth, water[1] * depth, water[2] * depth];
    },
    label,
  );
  if (surround === 'trees') {
    const count = intBetween(rng, 12, 18);
    let planted = 0;
    for (let i = 0; i < count; i++) {
      const angle = (2 * Math.PI * (i + between(rng, -0.3, 0.3))) / count;
      const treeRadius = between(rng, 2, 3) * u;
      const distance = boundary(angle) + treeRadius + between(rng, 1, 3) * u;
      const tx = cx + Math.cos(angle) * distance * aspect;
      const ty = cy + (Math.sin(angle) * distance) / aspect;
      if (canvas.isFree(tx - treeRadius, ty - treeRadius, tx + treeRadius, ty + treeRadius, 0)) {
        paintTree(canvas, tx, ty, treeRadius);
        planted++;
      }
    }
    // Captions must not speak of trees that did not fit on the image.
    if (planted === 0) surround = 'grass';
  }
  return { scene: 'lake', position, size, surround };
};

const playground: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.grass);
  const orientation: Orientation = rng.next() < 0.5 ? 'horizontal' : 'vertical';
  const cx = s / 2 + between(rng, -3, 3) * u;
  const cy = s / 2 + between(rng, -3, 3) * u;
  const halfLong = between(rng, 20, 23) * u;
  const halfShort = between(rng, 12, 14) * u;
  const trackWidth = 4 * u;
  const straight = halfLong - halfShort;
  // Distance from the stadium's centre line segment: < halfShort is inside the outer edge of the track.
  const distance = (x: number, y: number): number => {
    const [l, sh] = orientation === 'horizontal' ? [x - cx, y - cy] : [y - cy, x - cx];
    return Math.hypot(Math.max(Math.abs(l) - straight, 0), sh);
  };
  const box = { x: cx - halfLong - 1, y: cy - halfLong - 1, width: 2 * halfLong + 2, height: 2 * halfLong + 2 };
  const track = canvas.addObject('playground', 'red');
  const trackColor = canvas.jitter(COLORS.track, 8);
  canvas.fillWhere(
    box,
    (x, y) => distance(x, y) < halfShort,
    (x, y) => {
      // faint lane lines
      const lane = Math.floor(((halfShort - distance(x + 0.5, y + 0.5)) / trackWidth) * 4);
      const gain = lane % 2 === 0 ? 1 : 1.1;
      return [trackColor[0] * gain, trackColor[1] * gain, trackColor[2] * gain];
    },
    track,
  );
  const field = canvas.addObject('football field', 'green');
  const pitch = canvas.jitter(COLORS.pitch, 8);
  const inner = halfShort - trackWidth;
  canvas.fillWhere(
    box,
    (x, y) => distance(x, y) < inner,
    (x, y) => {
      const l = orientation === 'horizontal' ? x + 0.5 - cx : y + 0.5 - cy;
      const onCentreLine = Math.abs(l) < 0.5 * Math.max(1, u);
      const band = Math.floor((l + halfLong) / (3 * u)) % 2 === 0 ? 1.05 : 0.95;
      return onCentreLine ? COLORS.pitchLine : [pitch[0] * band, pitch[1] * band, pitch[2] * band];
    },
    field,
  );
  const buildingColor = rng.pick(['red', 'white', 'blue'] as const);
  if (rng.next() < 0.6) {
    const target = intBetween(rng, 1, 3);
    for (let i = 0; i < target; i++) placeBuilding(canvas, { x0: 0, y0: 0, x1: s, y1: s }, buildingColor, [6, 9], 60);
  }
  if (rng.next() < 0.5) {
    const trees = intBetween(rng, 3, 6);
    for (let i = 0; i < trees; i++) placeTree(canvas, 0, 0, s, s);
  }
  return { scene: 'playground', orientation, buildingColor };
};

const forest: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  canvas.fillBackground(COLORS.forestFloor, 0.1);
  const roadOrientation: Orientation = rng.next() < 0.5 ? 'vertical' : 'horizontal';
  const hasRoad = rng.next() < 0.5;
  const roadCenter = between(rng, 0.3, 0.7) * s;
  const roadWidth = 5 * u;
  if (hasRoad) paintStraightRoad(canvas, roadOrientation, roadCenter, roadWidth, canvas.addObject('road', 'grey'));
  const spacing = 5 * u;
  for (let gy = spacing / 2; gy < s + spacing / 2; gy += spacing) {
    for (let gx = spacing / 2; gx < s + spacing / 2; gx += spacing) {
      const radius = between(rng, 2.6, 3.6) * u;
      const cx = gx + between(rng, -1.5, 1.5) * u;
      const cy = gy + between(rng, -1.5, 1.5) * u;
      if (hasRoad && Math.abs((roadOrientation === 'vertical' ? cx : cy) - roadCenter) < roadWidth / 2 + radius + 0.5) continue;
      paintTree(canvas, cx, cy, radius);
    }
  }
  return { scene: 'forest', hasRoad, roadOrientation };
};

const intersection: Painter = (canvas) => {
  const { rng, size: s } = canvas;
  const u = s / 64;
  const ground = rng.next() < 0.5 ? 'grass' : 'bare';
  canvas.fillBackground(ground === 'grass' ? COLORS.grass : COLORS.bareLand);
  const cx = between(rng, 0.4, 0.6) * s;
  const cy = between(rng, 0.4, 0.6) * s;
  const width = 7 * u;
  const vertical = canvas.addObject('road', 'grey');
  const horizontal = canvas.addObject('road', 'grey');
  paintStraightRoad(canvas, 'vertical', cx, width, vertical);
  paintStraightRoad(canvas, 'horizontal', cy, width, horizontal);
  const buildingColor = rng.pick(['red', 'white', 'blue'] as const);
  const quadrants = rng.shuffle([
    { x0: 0, y0: 0, x1: cx - width / 2, y1: cy - width / 2 },
    { x0: cx + width / 2, y0: 0, x1: s, y1: cy - width / 2 },
    { x0: 0, y0: cy + width / 2, x1: cx - width / 2, y1: s },
    { x0: cx + width / 2, y0: cy + width / 2, x1: s, y1: s },
  ]);
  const buildingCount = rng.pick([0, 1, 2, 3, 4]);
  for (let i = 0; i < buildingCount; i++) placeBuilding(canvas, quadrants[i]!, buildingColor, [8, 12]);
  const carCount = rng.pick([0, 1, 1, 2, 2, 3]);
  const isRoad = (label: number): boolean => label === vertical || label === horizontal;
  for (let i = 0; i < carCount; i++) {
    for (let attempt = 0; attempt < 30; attempt++) {
      const onVertical = rng.next() < 0.5;
      const lane = rng.next() < 0.5 ? -1 : 1;
      const t = between(rng, 2 * u, s - 7 * u);
      const [x0, y0, w, h] = onVertical
        ? [cx + lane * 1.8 * u - 1.3 * u, t, 2.6 * u, 4.6 * u]
        : [t, cy + lane * 1.8 * u - 1.3 * u, 4.6 * u, 2.6 * u];
      // Cars stay off the crossing itself and off each other: every pixel under the car must be plain road.
      let clear = true;
      for (let y = Math.round(y0) - 1; y <= Math.round(y0 + h) && clear; y++) {
        for (let x = Math.round(x0) - 1; x <= Math.round(x0 + w) && clear; x++) {
          if (!isRoad(canvas.labelAt(x, y))) clear = false;
        }
      }
      const crossing = Math.abs(x0 + w / 2 - cx) < width && Math.abs(y0 + h / 2 - cy) < width;
      if (!clear || crossing) continue;
      canvas.fillRect(x0, y0, x0 + w, y0 + h, canvas.jitter(rng.pick(CAR_COLORS), 6), canvas.addObject('car', 'mixed'));
      break;
    }
  }
  return { scene: 'intersection', ground, buildingColor };
};

export const SCENE_PAINTERS: Readonly<Record<SceneType, Painter>> = {
  residential,
  farmland,
  parking,
  river,
  lake,
  playground,
  forest,
  intersection,
};

