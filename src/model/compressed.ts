/**
 * Reading weight-only quantised checkpoints in the compressed-tensors "pack-quantized" format (what llm-compressor
 * writes and vLLM loads; docs/checkpoints.md): for each quantised Linear `X`, `X.weight_packed` (int32),
 * `X.weight_scale` and `X.weight_shape` (int64 [out, in]) stand in for `X.weight`, and config.json's
 * `quantization_config` says which scheme each layer has. Any symmetric int4 / int8 channel or group scheme is read.
 * `prepareQuantized` turns the Linear layers a checkpoint stores packed into QuantLinear modules before the weights
 * are loaded by name; `quantize.ts` writes such folders.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Linear, type Module, type QuantBits, QuantLinear, type Tensor } from '../engine/index.js';
import { readRegularFileSync } from '../util/files.js';
import { type CheckpointReader, legacyName } from './checkpoint.js';

/** One weight scheme of a compressed-tensors quantization_config. */
export interface WeightScheme {
  bits: QuantBits;
  /** null = one scale per output channel. */
  groupSize: number | null;
  targets: string[];
}

export interface QuantizationConfig {
  schemes: WeightScheme[];
  ignore: string[];
}

/** The quantization_config of a model folder's config.json (null when it has none); unsupported schemes throw. */
export function readQuantizationConfig(dir: string): QuantizationConfig | null {
  const path = dir.endsWith('.json') ? dir : join(dir, 'config.json');
  if (!existsSync(path)) return null;
  const raw = JSON.parse(readRegularFileSync(path)) as { quantization_config?: unknown };
  if (raw.quantization_config === undefined || raw.quantization_config === null) return null;
  return parseQuantizationConfig(raw.quantization_config, path);
}

export function parseQuantizationConfig(qc: unknown, where: string): QuantizationConfig {
  const bad = (msg: string) => new Error(`${where}: quantization_config ${msg}`);
  if (typeof qc !== 'object' || qc === null || Array.isArray(qc)) throw bad('must be an object');
  const c = qc as Record<string, unknown>;
  if (c.quant_method !== 'compressed-tensors')
    throw bad(`quant_method ${JSON.stringify(c.quant_method)} is not supported (expected "compressed-tensors")`);
  if (c.format !== 'pack-quantized')
    throw bad(`format ${JSON.stringify(c.format)} is not supported (expected "pack-quantized")`);
  const groups = c.config_groups;
  if (typeof groups !== 'object' || groups === null || !Object.keys(groups).length)
    throw bad('needs config_groups with at least one group');
  const schemes: WeightScheme[] = [];
  for (const [name, g0] of Object.entries(groups as Record<string, unknown>)) {
    const g = g0 as Record<string, unknown>;
    const w = g?.weights as Record<string, unknown> | null | undefined;
    if (!w) throw bad(`group ${name} has no weights scheme`);
    if (g.input_activations != null || g.output_activations != null)
      throw bad(`group ${name} quantises activations; only weight-only schemes (W4A16, W8A16) are supported`);
    if (w.type !== 'int') throw bad(`group ${name}: weight type ${JSON.stringify(w.type)} is not supported (int only)`);
    if (w.num_bits !== 4 && w.num_bits !== 8)
      throw bad(`group ${name}: num_bits ${JSON.stringify(w.num_bits)} is not supported (4 or 8)`);
    if (w.symmetric !== true)
      throw bad(`group ${name}: asymmetric weights (zero points) are not supported; quantise with symmetric: true`);
    if (w.actorder != null && w.actorder !== false)
      throw bad(`group ${name}: activation ordering (g_idx) is not supported`);
    let groupSize: number | null;
    if (w.strategy === 'channel') groupSize = null;
    else if (w.strategy === 'group') {
      if (!Number.isInteger(w.group_size) || (w.group_size as number) <= 0)
        throw bad(`group ${name}: strategy "group" needs a positive group_size, got ${JSON.stringify(w.group_size)}`);
      groupSize = w.group_size as number;
    } else throw bad(`group ${name}: strategy ${JSON.stringify(w.strategy)} is not supported (channel or group)`);
    const targets = g.targets;
    if (!Array.isArray(targets) || !targets.every((t) => typeof t === 'string'))
      throw bad(`group ${name}: targets must be a list of strings`);
    schemes.push({ bits: w.num_bits, groupSize, targets: targets as string[] });
  }
  const ignore = c.ignore ?? [];
  if (!Array.isArray(ignore) || !ignore.every((t) => typeof t === 'string'))
    throw bad('ignore must be a list of strings');
  return { schemes, ignore: ignore as string[] };
}

/** compressed-tensors target matching: a class name, an exact module name, or "re:<regex>" on the name. */
function matches(target: string, moduleName: string, className: string): boolean {
  if (target.startsWith('re:')) return new RegExp(target.slice(3)).test(moduleName);
  return target === className || target === moduleName;
}

export function schemeFor(qc: QuantizationConfig, moduleName: string): WeightScheme | null {
  if (qc.ignore.some((t) => matches(t, moduleName, 'Linear'))) return null;
  return qc.schemes.find((s) => s.targets.some((t) => matches(t, moduleName, 'Linear'))) ?? null;
}

function setModule(root: Module, name: string, value: Module): void {
  const parts = name.split('.');
  let cur: unknown = root;
  for (const p of parts.slice(0, -1)) cur = (cur as Record<string, unknown>)[p];
  (cur as Record<string, unknown>)[parts[parts.length - 1] as string] = value;
}

export interface QuantizedSummary {
  /** Linear layers stored quantised, by bits. */
  layers: number;
  bits: number[];
  groupSizes: Array<number | null>;
}

/**
 * Replaces every Linear layer whose weight the checkpoint stores packed (`<name>.weight_packed`, legacy prefixes
 * included) by a QuantLinear of the scheme the config assigns it, so the load that follows fills it by name.
 */
export function prepareQuantized(model: Module, reader: CheckpointReader, qc: QuantizationConfig): QuantizedSummary {
  const packed = new Set<string>();
  for (const name of reader.names()) {
    if (!name.endsWith('.weight_packed')) continue;
    if (reader.tensors.has(name.replace(/_packed$/, '_zero_point')))
      throw new Error(`checkpoint ${reader.path}: ${name}: zero points (asymmetric weights) are not supported`);
    const mod = name.slice(0, -'.weight_packed'.length);
    packed.add(legacyName(`${mod}.weight`)?.slice(0, -'.weight'.length) ?? mod);
  }
  // Linear layers, and the output projection (lm_head: a Linear in transformers, a bare weight here).
  const linears = new Map<string, { inFeatures: number; outFeatures: number; weight: Tensor; bias: Tensor | null }>();
  for (const [name, m] of model.namedModules()) {
    if (m instanceof Linear) linears.set(name, m);
    else if (name === 'lm_head' && (m as unknown as { weight?: Tensor }).weight?.ndim === 2) {
      const weight = (m as unknown as { weight: Tensor }).weight;
      const [outFeatures, inFeatures] = weight.shape as [number, number];
      linears.set(name, { inFeatures, outFeatures, weight, bias: null });
    }
  }
  const summary: QuantizedSummary = { layers: 0, bits: [], groupSizes: [] };
  for (const name of packed) {
    const lin = linears.get(name);
    if (!lin) continue; // left to the load, which names it as unexpected
    const scheme = schemeFor(qc, name);
    if (!scheme)
      throw new Error(
        `checkpoint ${reader.path}: ${name} is stored packed but no quantization_config group targets it (or it is ignored)`,
      );
    const q = new QuantLinear(lin.inFeatures, lin.outFeatures, scheme.bits, scheme.groupSize ?? lin.inFeatures, {
      bias: lin.bias !== null,
    });
    lin.weight.dispose();
    lin.bias?.dispose();
    setModule(model, name, q);
    summary.layers++;
    if (!summary.bits.includes(scheme.bits)) summary.bits.push(scheme.bits);
    if (!summary.groupSizes.includes(scheme.groupSize)) summary.groupSizes.push(scheme.groupSize);
  }
  return summary;
}

/** Parameters the model stands for: a QuantLinear counts its [out, in] weight (and bias), not its packed words. */
export function logicalParameters(model: Module): number {
  let n = 0;
  const quant = new Set<string>();
  for (const [name, m] of model.namedModules())
    if (m instanceof QuantLinear) {
      n += m.outFeatures * m.inFeatures + (m.bias ? m.outFeatures : 0);
      quant.add(`${name}.`);
    }
  for (const [name, p] of model.namedParameters()) {
    const dot = name.lastIndexOf('.');
    if (!quant.has(name.slice(0, dot + 1))) n += p.size;
  }
  return n;
}

/**
 * One line saying what a load produced: parameters (quantised layers counted at full size), the float dtype of the
 * rest, the quantisation, whether the files are mapped, load time and the process RSS now.
 */
export function loadSummary(
  model: Module,
  report: { seconds: number; mapped?: boolean; quantized?: QuantizedSummary },
  dir: string,
): string {
  const byType = new Map<string, number>();
  for (const [name, p] of model.namedParameters())
    if (!/\.weight_(packed|scale|shape)$/.test(name)) byType.set(p.dtype, (byType.get(p.dtype) ?? 0) + p.size);
  const dtype = [...byType].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'none';
  const q = report.quantized;
  const quant = q
    ? `int${q.bits.join('/')} weights (${q.groupSizes.map((g) => (g === null ? 'per channel' : `group ${g}`)).join(', ')}) in ${q.layers} Linear layers`
    : 'no quantisation';
  const rss = process.memoryUsage().rss / 1e9;
  const params = logicalParameters(model);
  return (
    `loaded ${dir}: ${params >= 1e9 ? `${(params / 1e9).toFixed(2)} B` : `${(params / 1e6).toFixed(1)} M`} parameters, ${dtype}, ${quant}, ` +
    `${report.mapped ? 'memory-mapped' : 'read into memory'}, ${report.seconds.toFixed(1)} s, RSS ${rss.toFixed(2)} GB`
  );
}

/** After loading: each QuantLinear's weight_shape must be the [out, in] it was built for. */
export function verifyQuantized(model: Module, path: string): void {
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof QuantLinear)) continue;
    const s = m.weight_shape.toArray();
    if (s[0] !== m.outFeatures || s[1] !== m.inFeatures)
      throw new Error(
        `checkpoint ${path}: ${name}.weight_shape is [${s}], but the layer is [${m.outFeatures}, ${m.inFeatures}] (wrong config.json?)`,
      );
  }
}
