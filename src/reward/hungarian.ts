/**
 * Maximum-weight bipartite assignment (Hungarian algorithm with potentials, O(n³)) for matching predicted boxes to
 * reference boxes. Rectangular inputs are padded with zero weights.
 */

/** Returns, for each row, the assigned column or -1, maximising the total weight. */
export function maxWeightAssignment(weights: number[][]): number[] {
  const rows = weights.length;
  const cols = rows > 0 ? weights[0]!.length : 0;
  if (rows === 0 || cols === 0) return new Array(rows).fill(-1);
  const n = Math.max(rows, cols);
  let max = 0;
  for (const r of weights) for (const w of r) if (w > max) max = w;
  // Minimise cost = max − weight on the padded square matrix.
  const cost = (i: number, j: number) => (i < rows && j < cols ? max - weights[i]![j]! : max);
  const INF = Number.POSITIVE_INFINITY;
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1); // p[j]: row assigned to column j (1-based), 0 = none
  const way = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(INF);
    const used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = INF;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost(i0 - 1, j - 1) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else minv[j]! -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const assign = new Array<number>(rows).fill(-1);
  for (let j = 1; j <= n; j++) {
    const i = p[j]! - 1;
    if (i >= 0 && i < rows && j - 1 < cols) assign[i] = j - 1;
  }
  return assign;
}
