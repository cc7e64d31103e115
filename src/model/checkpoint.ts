/**
 * Checkpoint IO in the Hugging Face layout: `model.safetensors`, or shards listed by `model.safetensors.index.json`
 * (`weight_map`: tensor name → shard file). Files are memory-mapped by the engine's SafetensorsFile: a parameter whose
 * checkpoint dtype it keeps (bf16 stays bf16 under dtype 'auto') is a view of the mapping, so a 9B bf16 checkpoint
 * (≈20 GB) "loads" in about a second and pages come in as the first forward touches them; conversions (bf16 → float32)
 * read into a buffer the parameter owns. `mmap: false` (or no native addon) reads every tensor instead.
 * Loading replaces placeholder parameters by name; checkpoint names are the model's parameter names.
 *
 * Accepted variants: transformers 5.x fused expert tensors (`mlp.experts.gate_up_proj` [E, 2I, H],
 * `mlp.experts.down_proj` [E, H, I]) are split into the per-expert names; legacy top-level prefixes
 * (`model.layers.*`, `model.embed_tokens.*`, `visual.*`) are mapped to `model.language_model.*` / `model.visual.*`.
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  type DType,
  Embedding,
  type Module,
  Parameter,
  SafetensorsFile,
  saveSafetensors,
  type Tensor,
} from '../engine/index.js';
import { describeFileKind, readRegularFileSync } from '../util/files.js';
import { Progress } from '../util/progress.js';
import { parameterOwner, setParameter } from './modules.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

interface SourceTensor {
  file: SafetensorsFile;
  name: string;
  dtype: string;
  shape: number[];
}

/** The tensors of a checkpoint directory (single file or sharded), opened lazily per shard. */
export class CheckpointReader {
  private readonly files = new Map<string, SafetensorsFile>();
  readonly tensors = new Map<string, SourceTensor>();

  /**
   * `path`: a directory with model.safetensors or model.safetensors.index.json, or a .safetensors file.
   * `mmap` (default true): map the files (see SafetensorsFile).
   */
  constructor(
    readonly path: string,
    private readonly opts: { mmap?: boolean } = {},
  ) {
    if (!existsSync(path)) throw new Error(`checkpoint: ${path} does not exist`);
    try {
      const st = statSync(path);
      if (!st.isFile() && !st.isDirectory())
        throw new Error(`checkpoint: ${path} is ${describeFileKind(st)}; expected a directory or a .safetensors file`);
      if (st.isFile()) {
        this.addFile(path);
        return;
      }
      const indexPath = join(path, INDEX_FILE);
      if (existsSync(indexPath)) {
        const map = readIndex(indexPath);
        const byFile = new Map<string, string[]>();
        for (const [name, file] of map) {
          if (!byFile.has(file)) byFile.set(file, []);
          byFile.get(file)!.push(name);
        }
        for (const [file, names] of byFile) {
          const f = this.addFile(join(path, file));
          for (const n of names) {
            if (!f.tensors.has(n))
              throw new Error(`${INDEX_FILE} maps '${n}' to ${file}, but that shard has no such tensor`);
          }
        }
        // The index is the authority: tensors a shard holds but the index does not list are not part of the model.
        for (const [name, t] of [...this.tensors])
          if (map.get(name) !== basename(t.file.path)) this.tensors.delete(name);
        return;
      }
      const single = join(path, SINGLE_FILE);
      if (existsSync(single)) {
        this.addFile(single);
        return;
      }
      throw new Error(`no ${SINGLE_FILE} or ${INDEX_FILE} in the directory`);
    } catch (e) {
      this.close();
      const msg = (e as Error).message;
      throw new Error(
        msg.startsWith('checkpoint') || msg.startsWith('safetensors') ? msg : `checkpoint ${path}: ${msg}`,
      );
    }
  }

  private addFile(p: string): SafetensorsFile {
    if (!existsSync(p)) throw new Error(`checkpoint: shard ${p} is missing`);
    const f = new SafetensorsFile(p, { mmap: this.opts.mmap });
    this.files.set(p, f);
    for (const [name, info] of f.tensors) {
      const prev = this.tensors.get(name);
      if (prev) throw new Error(`checkpoint: tensor '${name}' appears in both ${prev.file.path} and ${p}`);
      this.tensors.set(name, { file: f, name, dtype: info.dtype, shape: info.shape });
    }
    return f;
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** True when every file is memory-mapped. */
  get mapped(): boolean {
    return this.files.size > 0 && [...this.files.values()].every((f) => f.mapped);
  }

  /** Total bytes of tensor data. */
  get bytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) {
      const info = t.file.tensors.get(t.name)!;
      n += info.end - info.begin;
    }
    return n;
  }

  read(name: string, as?: DType): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`checkpoint ${this.path}: no tensor '${name}'`);
    return t.file.read(name, as);
  }

  /** A tensor read in scattered rows (an embedding table): see SafetensorsFile.adviseScatteredReads. */
  adviseScatteredReads(name: string): void {
    this.tensors.get(name)?.file.adviseScatteredReads(name);
  }

  close(): void {
    for (const f of this.files.values()) f.close();
    this.files.clear();
  }
}

function readIndex(p: string): Map<string, string> {
  let raw: unknown;
  let text: string;
  try {
    text = readRegularFileSync(p);
  } catch (e) {
    throw new Error(`checkpoint: cannot read ${INDEX_FILE}: ${(e as Error).message}`);
  }
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`checkpoint: ${p} is not valid JSON (${(e as Error).message})`);
  }
  const wm = (raw as { weight_map?: unknown })?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm))
    throw new Error(`checkpoint: ${p} has no "weight_map" object (tensor name → shard file)`);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(wm)) {
    if (typeof v !== 'string' || v.includes('/') || v.includes('\\') || !v.endsWith('.safetensors'))
      throw new Error(
        `checkpoint: ${p} maps '${k}' to ${JSON.stringify(v)}; expected a .safetensors file name in the same directory`,
      );
    out.set(k, v);
  }
  if (out.size === 0) throw new Error(`checkpoint: ${p} lists no tensors`);
  return out;
}

/** A model tensor and how to produce it from the checkpoint. */
interface Plan {
  source: string;
  shape: number[];
  /** Slice of a fused expert tensor: [expert, row0, rows] along dim 1. */
  fused?: { expert: number; start: number; length: number };
}

export interface LoadOptions {
  /** Missing or unexpected tensors are an error (default true). Shape mismatches always are. */
  strict?: boolean;
  /**
   * Parameter dtype: 'auto' keeps bf16 as bf16 and stores every other float as float32; 'float32' / 'bfloat16'
   * convert. Tensors named in `keepFloat32` stay float32 regardless (the router bias).
   */
  dtype?: 'auto' | 'float32' | 'bfloat16';
  /** Checkpoint names that are expected extras and silently skipped (e.g. GLM-4.5's MTP layer). */
  ignore?: (name: string) => boolean;
  keepFloat32?: (name: string) => boolean;
  /** Show a progress bar on stderr (default: when the checkpoint is larger than 256 MiB). */
  progress?: boolean;
  /** Memory-map the checkpoint files (default true; false reads every tensor into memory). */
  mmap?: boolean;
}

export interface LoadReport {
  loaded: number;
  /** Model parameters the checkpoint does not provide (their values are left to the caller). */
  missing: string[];
  /** Checkpoint tensors the model has no place for. */
  unexpected: string[];
  /** Checkpoint tensors skipped by `ignore`. */
  ignored: string[];
  /** Checkpoint tensors found under a legacy name or as fused experts. */
  converted: number;
  bytes: number;
  seconds: number;
  /** Set when Linear layers were loaded quantised (compressed-tensors pack-quantized). */
  quantized?: { layers: number; bits: number[]; groupSizes: Array<number | null> };
  /** True when the files were memory-mapped (float tensors kept in their stored type are views of the files). */
  mapped?: boolean;
}

const FUSED = /^(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$/;
const FLOAT_ST = new Set(['F64', 'F32', 'F16', 'BF16']);

/** The model name of a checkpoint tensor stored under a legacy top-level prefix, or null. */
export function legacyName(name: string): string | null {
  if (name.startsWith('visual.')) return `model.${name}`;
  if (name.startsWith('model.') && !name.startsWith('model.language_model.') && !name.startsWith('model.visual.'))
    return `model.language_model.${name.slice('model.'.length)}`;
  return null;
}

function fmtList(names: string[], limit = 30): string {
  return names.slice(0, limit).join(', ') + (names.length > limit ? `, … (${names.length - limit} more)` : '');
}

/**
 * Loads a checkpoint into `model` by parameter name, replacing each parameter with a tensor read from disk (no
 * copy of the placeholder is ever made). Validates every name and shape before reading any data.
 */
export function loadWeights(model: Module, reader: CheckpointReader, opts: LoadOptions = {}): LoadReport {
  const t0 = Date.now();
  const strict = opts.strict ?? true;
  const params = new Map(model.namedParameters());
  const plans = new Map<string, Plan>();
  const consumed = new Set<string>();
  const ignored: string[] = [];
  let converted = 0;

  for (const [name, src] of reader.tensors) {
    if (params.has(name)) {
      plans.set(name, { source: name, shape: src.shape });
      consumed.add(name);
      continue;
    }
    const legacy = legacyName(name);
    if (legacy && params.has(legacy) && !reader.tensors.has(legacy)) {
      plans.set(legacy, { source: name, shape: src.shape });
      consumed.add(name);
      converted++;
      continue;
    }
    const m = FUSED.exec(legacy ?? name);
    if (m && src.shape.length === 3) {
      const [E, R] = src.shape as [number, number, number];
      const prefix = m[1] as string;
      const parts: Array<[string, number, number]> =
        m[2] === 'gate_up_proj'
          ? [
              ['gate_proj', 0, R / 2],
              ['up_proj', R / 2, R / 2],
            ]
          : [['down_proj', 0, R]];
      let any = false;
      for (let e = 0; e < E; e++) {
        for (const [proj, start, length] of parts) {
          const target = `${prefix}.${e}.${proj}.weight`;
          if (!params.has(target)) continue;
          plans.set(target, {
            source: name,
            shape: [length, src.shape[2] as number],
            fused: { expert: e, start, length },
          });
          any = true;
        }
      }
      if (any) {
        consumed.add(name);
        converted++;
        continue;
      }
    }
    if (opts.ignore?.(name)) {
      ignored.push(name);
      consumed.add(name);
    }
  }

  const missing = [...params.keys()].filter((n) => !plans.has(n));
  const unexpected = reader.names().filter((n) => !consumed.has(n));
  const badShape: string[] = [];
  for (const [name, plan] of plans) {
    const p = params.get(name)!;
    if (plan.shape.length !== p.shape.length || plan.shape.some((d, i) => d !== p.shape[i]))
      badShape.push(`${name}: checkpoint [${plan.shape}] (${plan.source}) vs model [${p.shape}]`);
  }
  if (badShape.length)
    throw new Error(
      `checkpoint ${reader.path}: shape mismatch for ${badShape.length} tensor(s) (wrong config.json for these weights?):\n  ${badShape.slice(0, 30).join('\n  ')}`,
    );
  if (strict && (missing.length || unexpected.length)) {
    throw new Error(
      `checkpoint ${reader.path}: ${missing.length} missing and ${unexpected.length} unexpected tensor(s) (strict load; pass strict: false to load what matches)` +
        (missing.length ? `\n  missing: ${fmtList(missing)}` : '') +
        (unexpected.length ? `\n  unexpected: ${fmtList(unexpected)}` : ''),
    );
  }

  const total = reader.bytes;
  const bar = (opts.progress ?? total > 256 * 1024 ** 2) ? new Progress({ label: 'load', total: plans.size }) : null;
  const want = opts.dtype ?? 'auto';
  let bytes = 0;
  let done = 0;
  // Fused sources are read once per tensor, not once per expert.
  let fusedCache = null as { name: string; t: Tensor } | null;
  try {
    for (const [name, plan] of plans) {
      const old = params.get(name)!;
      const srcDtype = reader.tensors.get(plan.source)!.dtype;
      let dtype: DType =
        want === 'auto' ? (srcDtype === 'BF16' ? 'bfloat16' : 'float32') : want === 'bfloat16' ? 'bfloat16' : 'float32';
      if (opts.keepFloat32?.(name)) dtype = 'float32';
      // Integer tensors (packed quantised weights, their shapes) keep their values: int32, never a float.
      const integer = !FLOAT_ST.has(srcDtype);
      if (integer !== (old.dtype === 'int32' || old.dtype === 'bool'))
        throw new Error(
          `checkpoint ${reader.path}: '${plan.source}' is ${srcDtype} but the model's '${name}' is ${old.dtype}`,
        );
      let t: Tensor;
      if (integer) {
        t = reader.read(plan.source);
      } else if (plan.fused) {
        if (fusedCache?.name !== plan.source) {
          fusedCache?.t.dispose();
          fusedCache = { name: plan.source, t: reader.read(plan.source) };
        }
        const { expert, start, length } = plan.fused;
        t = fusedCache.t
          .select(0, expert)
          .slice(0, start, start + length)
          .contiguous();
        if (t.dtype !== dtype) t = t.to(dtype);
      } else {
        // An embedding table is read a row per token: mapped in 2 MiB pages, a prompt would map most of it.
        if (parameterOwner(model, name) instanceof Embedding) reader.adviseScatteredReads(plan.source);
        t = reader.read(plan.source, dtype);
      }
      bytes += t.size * (t.dtype === 'bfloat16' ? 2 : t.dtype === 'bool' ? 1 : 4);
      setParameter(model, name, Parameter.from(t, old.requiresGrad));
      done++;
      bar?.update(done, `${(bytes / 1024 ** 3).toFixed(1)} GiB`);
    }
  } finally {
    fusedCache?.t.dispose();
    bar?.stop();
  }
  return {
    loaded: done,
    missing,
    unexpected,
    ignored,
    converted,
    bytes,
    seconds: (Date.now() - t0) / 1000,
  };
}

export interface SaveOptions {
  /** Maximum bytes per shard (default 5 GB, as save_pretrained); larger models are sharded with an index. */
  shardBytes?: number;
  /** Names to leave out (e.g. a tied lm_head). */
  skip?: (name: string) => boolean;
}

/**
 * Writes the model's parameters as `model.safetensors` or `model-0000i-of-0000n.safetensors` + index (every file
 * atomic). Parameters shared between names are written once. Stale shards of an earlier save are removed.
 */
export function saveWeights(model: Module, dir: string, opts: SaveOptions = {}): { files: string[]; bytes: number } {
  const limit = opts.shardBytes ?? 5e9;
  if (!(limit > 0)) throw new Error(`saveWeights: shardBytes must be positive, got ${limit}`);
  const seen = new Set<Tensor>();
  const entries: Array<[string, Tensor]> = [];
  for (const [name, p] of model.namedParameters()) {
    if (seen.has(p) || opts.skip?.(name)) continue;
    seen.add(p);
    entries.push([name, p]);
  }
  const size = (t: Tensor) => t.size * (t.dtype === 'bfloat16' ? 2 : t.dtype === 'float64' ? 8 : 4);
  const shards: Array<Array<[string, Tensor]>> = [[]];
  let cur = 0;
  for (const e of entries) {
    const b = size(e[1]);
    if (cur > 0 && cur + b > limit) {
      shards.push([]);
      cur = 0;
    }
    shards[shards.length - 1]!.push(e);
    cur += b;
  }
  const n = shards.length;
  const names = shards.map((_, i) =>
    n === 1 ? SINGLE_FILE : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`,
  );
  let total = 0;
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    saveSafetensors(join(dir, names[i]!), new Map(s), { format: 'pt' });
    for (const [name, t] of s) {
      weightMap[name] = names[i]!;
      total += size(t);
    }
  });
  const keep = new Set(names);
  if (n > 1) {
    writeJsonAtomic(join(dir, INDEX_FILE), { metadata: { total_size: total }, weight_map: weightMap });
    keep.add(INDEX_FILE);
  }
  for (const f of readdirSync(dir)) {
    const ours = f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f);
    if (ours && !keep.has(f)) rmSync(join(dir, f));
  }
  return { files: [...keep], bytes: total };
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeTextAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Writes via a temporary file and a rename: readers never see a half-written file. */
export function writeTextAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}
