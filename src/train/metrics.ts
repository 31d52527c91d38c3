/**
 * Classification metrics: pure functions over probabilities, labels and predictions.
 *
 * Conventions (test/fixtures/golden/FORMAT.md, "Predict case"):
 * - probabilities are row-major `count x classes`;
 * - confusion[true][predicted] holds counts;
 * - ties break toward the lower index (argmax, top-k, most confident wrong);
 * - a normalisation over a zero sum gives zeros, never NaN.
 */

export type Probabilities = Float32Array | Float64Array | ArrayLike<number>;

export interface ClassStats {
  /** tp / (predicted as this class); 0 when the class is never predicted. */
  precision: number;
  /** tp / (true members of this class); 0 when the class has no samples. */
  recall: number;
  /** Per-class accuracy: the fraction of this class's samples classified correctly (= recall). */
  accuracy: number;
  /** Number of samples whose true label is this class. */
  support: number;
}

export interface ScoredSample {
  /** Sample index, or -1 for padding when a class has fewer than k samples. */
  index: number;
  /** probs[index, class]; NaN for padding. */
  prob: number;
  /**
   * The sum of the sample's other probabilities: 1 - prob, but exact where prob has rounded to
   * 1 in float32 (it tells apart images that all score "100%"). NaN for padding.
   */
  rest: number;
}

export interface WrongSample {
  index: number;
  trueLabel: number;
  predicted: number;
  /** Probability given to the (wrong) predicted class. */
  prob: number;
  /** The sum of the other classes' probabilities (see ScoredSample.rest). */
  rest: number;
  /** Probability given to the true class. */
  trueProb: number;
}

function checkShape(probs: Probabilities, count: number, classes: number): void {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes must be a positive integer, got ${classes}`);
  if (probs.length !== count * classes) {
    throw new RangeError(`probabilities hold ${probs.length} values, expected count x classes = ${count} x ${classes}`);
  }
}

function checkLabels(labels: ArrayLike<number>, count: number, classes: number, what = 'label'): void {
  if (labels.length !== count) throw new RangeError(`${what}s hold ${labels.length} values, expected ${count}`);
  for (let i = 0; i < count; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new RangeError(`${what} ${i} is ${y}, outside [0, ${classes})`);
    }
  }
}

interface Scored {
  index: number;
  score: number;
  rest: number;
}

/** Descending by score (NaN last), then by a smaller rest (scores that rounded to 1 differ there), then toward the lower index. */
function byScoreDesc(a: Scored, b: Scored): number {
  const sa = Number.isNaN(a.score) ? -Infinity : a.score;
  const sb = Number.isNaN(b.score) ? -Infinity : b.score;
  if (sa !== sb) return sb - sa > 0 ? 1 : -1;
  if (a.rest !== b.rest && !Number.isNaN(a.rest) && !Number.isNaN(b.rest)) return a.rest - b.rest;
  return a.index - b.index;
}

/** Row i's probabilities other than column c, summed (in float64). */
function restOf(probs: ArrayLike<number>, i: number, classes: number, c: number): number {
  let sum = 0;
  for (let j = 0; j < classes; j++) if (j !== c) sum += probs[i * classes + j]!;
  return sum;
}

/** Column of the largest value in one row; ties give the lower index; NaN is never chosen over a number. */
function rowArgmax(probs: ArrayLike<number>, base: number, classes: number): number {
  let best = 0;
  let bestValue = -Infinity;
  let found = false;
  for (let c = 0; c < classes; c++) {
    const v = probs[base + c]!;
    if (Number.isNaN(v)) continue;
    if (!found || v > bestValue) {
      best = c;
      bestValue = v;
      found = true;
    }
  }
  return best;
}

/** Index of the largest value of each row; ties give the lower index; NaN is never chosen over a number. */
export function argmaxRows(probs: Probabilities, count: number, classes: number): Int32Array {
  checkShape(probs, count, classes);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = rowArgmax(probs, i * classes, classes);
  }
  return out;
}

/**
 * How many of the first `count` rows of `probs` (row-major, `classes` wide) have their argmax
 * equal to labels[i], with argmaxRows' rule (ties toward the lower index, NaN never chosen over
 * a number). Allocates nothing: the training loop calls it after every batch. `probs` and
 * `labels` may be longer than needed (buffers sized for the largest batch).
 */
export function countCorrect(probs: ArrayLike<number>, labels: ArrayLike<number>, count: number, classes: number): number {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes must be a positive integer, got ${classes}`);
  if (probs.length < count * classes) throw new RangeError(`probabilities hold ${probs.length} values, the batch needs ${count} x ${classes}`);
  if (labels.length < count) throw new RangeError(`labels hold ${labels.length} values, the batch needs ${count}`);
  let correct = 0;
  for (let i = 0; i < count; i++) {
    if (rowArgmax(probs, i * classes, classes) === labels[i]) correct++;
  }
  return correct;
}

/** confusion[true][predicted] counts. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: number): number[][] {
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`classes must be a positive integer, got ${classes}`);
  checkLabels(labels, labels.length, classes);
  checkLabels(predictions, labels.length, classes, 'prediction');
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]!]![predictions[i]!]! += 1;
  return m;
}

/**
 * 'row': each row divided by its sum (distribution of predictions for each true label).
 * 'col': each column divided by its sum (distribution of true labels for each prediction).
 * A zero sum gives zeros.
 */
export function normalizeConfusion(m: number[][], by: 'row' | 'col'): number[][] {
  const n = m.length;
  for (const row of m) if (row.length !== n) throw new RangeError('confusion matrix must be square');
  if (by === 'row') {
    return m.map((row) => {
      const sum = row.reduce((a, b) => a + b, 0);
      return row.map((v) => (sum === 0 ? 0 : v / sum));
    });
  }
  const sums = new Array<number>(n).fill(0);
  for (const row of m) row.forEach((v, c) => (sums[c]! += v));
  return m.map((row) => row.map((v, c) => (sums[c] === 0 ? 0 : v / sums[c]!)));
}

/** Precision, recall, per-class accuracy and support of every class, from confusion[true][predicted]. */
export function perClassStats(confusion: number[][]): ClassStats[] {
  const n = confusion.length;
  const colSums = new Array<number>(n).fill(0);
  for (const row of confusion) {
    if (row.length !== n) throw new RangeError('confusion matrix must be square');
    row.forEach((v, c) => (colSums[c]! += v));
  }
  return confusion.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = colSums[c]!;
    const recall = support === 0 ? 0 : tp / support;
    return { precision: predicted === 0 ? 0 : tp / predicted, recall, accuracy: recall, support };
  });
}

/**
 * Fraction of matching labels: accuracy(labels, predictions), or accuracy(confusion) for the
 * trace over the total. Empty input gives 0.
 */
export function accuracy(labels: ArrayLike<number>, predictions: ArrayLike<number>): number;
export function accuracy(confusion: number[][]): number;
export function accuracy(a: ArrayLike<number> | number[][], b?: ArrayLike<number>): number {
  if (b === undefined) {
    const m = a as number[][];
    let correct = 0;
    let total = 0;
    m.forEach((row, r) =>
      row.forEach((v, c) => {
        total += v;
        if (r === c) correct += v;
      }),
    );
    return total === 0 ? 0 : correct / total;
  }
  const labels = a as ArrayLike<number>;
  if (labels.length !== b.length) throw new RangeError(`labels (${labels.length}) and predictions (${b.length}) differ in length`);
  if (labels.length === 0) return 0;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === b[i]) correct++;
  return correct / labels.length;
}

/**
 * For each class c: the k samples with label c and the highest probs[i, c], descending (equal
 * probabilities: the smaller sum of the others first), then toward the lower index; padded with { index: -1, prob: NaN } when the class has fewer than k.
 */
export function topKPerClass(
  probs: Probabilities,
  labels: ArrayLike<number>,
  count: number,
  classes: number,
  k = 3,
): ScoredSample[][] {
  checkShape(probs, count, classes);
  checkLabels(labels, count, classes);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
  const members: Scored[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < count; i++) {
    const y = labels[i]!;
    members[y]!.push({ index: i, score: probs[i * classes + y]!, rest: restOf(probs, i, classes, y) });
  }
  return members.map((list) => {
    list.sort(byScoreDesc);
    const top: ScoredSample[] = list.slice(0, k).map((s) => ({ index: s.index, prob: s.score, rest: s.rest }));
    while (top.length < k) top.push({ index: -1, prob: Number.NaN, rest: Number.NaN });
    return top;
  });
}

/**
 * The n misclassified samples whose predicted (argmax) class got the highest probability,
 * descending, ties toward the lower index. Fewer than n when fewer are wrong.
 */
export function mostConfidentWrong(
  probs: Probabilities,
  labels: ArrayLike<number>,
  count: number,
  classes: number,
  n: number,
): WrongSample[] {
  checkShape(probs, count, classes);
  checkLabels(labels, count, classes);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  const predictions = argmaxRows(probs, count, classes);
  const wrong: Scored[] = [];
  for (let i = 0; i < count; i++) {
    const p = predictions[i]!;
    if (p !== labels[i]) wrong.push({ index: i, score: probs[i * classes + p]!, rest: restOf(probs, i, classes, p) });
  }
  wrong.sort(byScoreDesc);
  return wrong.slice(0, n).map(({ index, score, rest }) => ({
    index,
    trueLabel: labels[index]!,
    predicted: predictions[index]!,
    prob: score,
    rest,
    trueProb: probs[index * classes + labels[index]!]!,
  }));
}
