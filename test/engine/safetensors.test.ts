import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  int64Raw,
  loadSafetensors,
  nativeLoadError,
  SAFETENSORS_LIMITS,
  SafetensorsFile,
  saveSafetensors,
  tensor,
} from '../../src/engine/index.js';
import { duplicateKey } from '../../src/engine/safetensors.js';
import { readGenerationConfig } from '../../src/io/generation-config.js';
import { loadPreprocessorConfig } from '../../src/io/processor/config.js';
import { CheckpointReader } from '../../src/model/checkpoint.js';
import { loadConfig } from '../../src/model/config.js';
import { mappingFlags } from '../helpers/smaps.js';

const dir = mkdtempSync(join(tmpdir(), 'glmv-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A safetensors file from a header (object or raw JSON text / bytes) and data bytes. */
function raw(header: object | string | Buffer, data: Buffer = Buffer.alloc(0)): string {
  const h = Buffer.isBuffer(header)
    ? header
    : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const p = join(dir, `f${n++}.safetensors`);
  writeFileSync(p, Buffer.concat([len, h, data]));
  return p;
}

const f32 = (begin: number, end: number, shape = [(end - begin) / 4]) => ({
  dtype: 'F32',
  shape,
  data_offsets: [begin, end],
});

describe('mapped safetensors', () => {
  const hasNative = nativeLoadError() === null;

  it('maps the file: tensors are views of the mapping (no copy), private to the process', () => {
    const path = join(dir, 'm.safetensors');
    saveSafetensors(path, {
      w: tensor([1.5, -2, 3.25, 4], { dtype: 'bfloat16' }),
      x: tensor([[1, 2, 3]]),
      i: tensor([5, -6], { dtype: 'int32' }),
    });
    const before = readFileSync(path);
    const f = new SafetensorsFile(path);
    expect(f.mapped).toBe(hasNative);
    const a = f.read('x');
    const b = f.read('x');
    expect(a.toArray()).toEqual([1, 2, 3]);
    expect(f.read('w').dtype).toBe('bfloat16');
    expect(f.read('w').toArray()).toEqual([1.5, -2, 3.25, 4]);
    expect(f.read('i').toArray()).toEqual([5, -6]);
    a.fill_(9);
    // Two reads of one mapped tensor are the same pages; a read into a buffer would be a separate copy.
    expect(b.toArray()).toEqual(hasNative ? [9, 9, 9] : [1, 2, 3]);
    // Copy-on-write: writing into a mapped tensor never reaches the file.
    expect(readFileSync(path).equals(before)).toBe(true);
    f.close();
    // Views outlive the file handle (the mapping stays until the last view is collected).
    expect(b.toArray()[0]).toBe(hasNative ? 9 : 1);
    const c = loadSafetensors(path, 'float32');
    expect(c.get('w')!.dtype).toBe('float32');
    expect(c.get('w')!.toArray()).toEqual([1.5, -2, 3.25, 4]);
    const unmapped = new SafetensorsFile(path, { mmap: false });
    expect(unmapped.mapped).toBe(false);
    expect(unmapped.read('x').toArray()).toEqual([1, 2, 3]);
    unmapped.close();
  });

  it('asks the kernel for 2 MiB pages on the mapping (MADV_HUGEPAGE), unless told not to', (ctx) => {
    // smaps lists each mapping's advice: `hg` is MADV_HUGEPAGE. Needs Linux with transparent huge pages.
    if (!hasNative || !existsSync('/sys/kernel/mm/transparent_hugepage/enabled')) ctx.skip();
    const path = join(dir, 'huge.safetensors');
    saveSafetensors(path, { w: tensor(Array.from({ length: 1 << 16 }, (_, i) => i % 7)) });
    const huge = new SafetensorsFile(path);
    expect(huge.read('w').toArray()[8]).toBe(1);
    const mapped = mappingFlags(path);
    expect(mapped.length).toBe(1);
    expect(mapped[0]!.flags).toContain('hg');
    huge.close();
    const path2 = join(dir, 'small-pages.safetensors');
    saveSafetensors(path2, { w: tensor([1, 2, 3]) });
    const small = new SafetensorsFile(path2, { hugePages: false });
    expect(small.read('w').toArray()).toEqual([1, 2, 3]);
    expect(mappingFlags(path2).length).toBe(1);
    expect(mappingFlags(path2)[0]!.flags).not.toContain('hg');
    small.close();
  });

  it('maps a tensor read in scattered rows with small pages and no readahead, only the 2 MiB blocks around it', (ctx) => {
    if (!hasNative || !existsSync('/sys/kernel/mm/transparent_hugepage/enabled')) ctx.skip();
    const path = join(dir, 'scattered.safetensors');
    const mib = (k: number) => tensor(Array.from({ length: (k << 20) / 4 }, (_, i) => i % 3));
    saveSafetensors(path, { a: mib(6), emb: mib(5), z: mib(6) });
    const f = new SafetensorsFile(path);
    f.adviseScatteredReads('emb');
    expect(f.read('emb').toArray()[4]).toBe(1);
    const vmas = mappingFlags(path);
    f.close();
    // Huge pages, then the 2 MiB blocks that hold emb in small pages (at least its 5 MiB, at most 5 + 2 × 2), emb's
    // own pages read without readahead (`rr`), then huge pages again.
    const nh = vmas.filter((v) => v.flags.includes('nh'));
    expect(vmas[0]!.flags).toContain('hg');
    expect(vmas[vmas.length - 1]!.flags).toContain('hg');
    expect(vmas.slice(1, -1)).toEqual(nh);
    const bytes = nh.reduce((a, v) => a + v.bytes, 0);
    expect(bytes).toBeGreaterThanOrEqual(5 << 20);
    expect(bytes).toBeLessThanOrEqual(9 << 20);
    const random = vmas.filter((v) => v.flags.includes('rr'));
    expect(random.length).toBe(1);
    expect(random[0]!.bytes).toBeGreaterThanOrEqual(5 << 20);
    expect(random[0]!.bytes).toBeLessThanOrEqual((5 << 20) + 8192);
    expect(vmas.reduce((a, v) => a + v.bytes, 0)).toBeGreaterThanOrEqual(17 << 20);
  });

  it('writes every tensor whose size is a multiple of 64 bytes on a 64-byte boundary, names in the given order', () => {
    const path = join(dir, 'aligned.safetensors');
    const shapeI64 = int64Raw([3, 64]);
    const given = {
      weight_shape: shapeI64, // 16 bytes: would push every tensor after it off the cache line
      weight_packed: tensor(
        Array.from({ length: 48 }, (_, i) => [i, -i, 7 * i, i % 5]),
        { dtype: 'int32' },
      ),
      odd: tensor([1, 2, 3]), // 12 bytes
      scale: tensor(
        Array.from({ length: 32 }, (_, i) => i / 8),
        { dtype: 'bfloat16' },
      ),
    };
    saveSafetensors(path, given, { format: 'pt' });
    const bytes = readFileSync(path);
    const hlen = Number(bytes.readBigUInt64LE(0));
    expect((8 + hlen) % 64).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString('utf8'));
    expect(Object.keys(header)).toEqual(['__metadata__', 'weight_shape', 'weight_packed', 'odd', 'scale']);
    for (const name of ['weight_packed', 'scale']) expect((8 + hlen + header[name].data_offsets[0]) % 64, name).toBe(0);
    // Sizes multiple of 64 first (given order), then the rest; no holes.
    expect(header.weight_packed.data_offsets).toEqual([0, 768]);
    expect(header.scale.data_offsets).toEqual([768, 832]);
    expect(header.weight_shape.data_offsets).toEqual([832, 848]);
    expect(header.odd.data_offsets).toEqual([848, 860]);
    expect(bytes.length).toBe(8 + hlen + 860);
    const f = new SafetensorsFile(path);
    expect(f.names()).toEqual(['weight_shape', 'weight_packed', 'odd', 'scale']);
    expect(f.read('weight_packed').toArray()).toEqual(given.weight_packed.toArray());
    expect(f.read('scale').toArray()).toEqual(given.scale.toArray());
    expect(f.read('odd').toArray()).toEqual([1, 2, 3]);
    expect(f.read('weight_shape').toArray()).toEqual([3, 64]);
    f.close();
  });

  it('refuses a file changed in place after it was opened', () => {
    const path = join(dir, 'changed.safetensors');
    saveSafetensors(path, { x: tensor([1, 2]) });
    const f = new SafetensorsFile(path);
    expect(f.read('x').toArray()).toEqual([1, 2]);
    const later = new Date(Date.now() + 60_000);
    utimesSync(path, later, later);
    expect(() => f.read('x')).toThrow(/changed since it was opened.*reopen/);
    f.close();
    expect(() => f.read('x')).toThrow(/is closed/);
  });

  it('names a truncated file and offsets outside the data section', () => {
    const path = join(dir, 'whole.safetensors');
    saveSafetensors(path, { a: tensor([1, 2, 3, 4]), b: tensor([5, 6]) });
    const bytes = readFileSync(path);
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 4));
    expect(() => new SafetensorsFile(cut)).toThrow(/'b'.*outside the 20-byte data section \(truncated file\?\)/);
    writeFileSync(cut, bytes.subarray(0, 20));
    expect(() => new SafetensorsFile(cut)).toThrow(/runs past the end of the 20-byte file/);
    expect(() => new SafetensorsFile(raw({ a: f32(0, 8) }, Buffer.alloc(4)))).toThrow(
      /'a': data_offsets \[0,8\] outside the 4-byte data section/,
    );
    expect(() => new SafetensorsFile(raw({ a: f32(0, 4) }, Buffer.alloc(8)))).toThrow(/4 bytes after the last tensor/);
  });

  it('rejects overlapping, duplicated and gapped offsets as the reference does', () => {
    expect(() => new SafetensorsFile(raw({ a: f32(0, 8), b: f32(4, 12) }, Buffer.alloc(12)))).toThrow(
      /'b': data_offsets \[4, 12\] overlap tensor 'a'/,
    );
    expect(() => new SafetensorsFile(raw({ a: f32(0, 4), b: f32(0, 4) }, Buffer.alloc(4)))).toThrow(/overlap tensor/);
    expect(() => new SafetensorsFile(raw({ a: f32(0, 4), b: f32(8, 12) }, Buffer.alloc(12)))).toThrow(
      /'b'.*leave 4 unused bytes after tensor 'a'/,
    );
    expect(() => new SafetensorsFile(raw({ a: f32(4, 8) }, Buffer.alloc(8)))).toThrow(/unused bytes after the header/);
    // Zero-size tensors may share an offset; order in the header does not matter.
    const ok = new SafetensorsFile(
      raw({ z: f32(4, 4, [0]), b: f32(4, 8), a: f32(0, 4), y: f32(8, 8, [0, 3]) }, Buffer.alloc(8)),
    );
    expect(ok.names().sort()).toEqual(['a', 'b', 'y', 'z']);
    expect(ok.read('y').shape).toEqual([0, 3]);
    ok.close();
  });

  it('rejects invalid UTF-8, duplicate keys, bad metadata and headers that do not start with {', () => {
    const bad = Buffer.concat([
      Buffer.from('{"a\xff'.slice(0, 3), 'latin1'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('":1}'),
    ]);
    expect(() => new SafetensorsFile(raw(bad))).toThrow(/header is not valid UTF-8/);
    const dupTop = `{"a":${JSON.stringify(f32(0, 4))},"a":${JSON.stringify(f32(0, 4))}}`;
    expect(() => new SafetensorsFile(raw(dupTop, Buffer.alloc(4)))).toThrow(/key "a" more than once/);
    const dupEscaped = `{"ab":${JSON.stringify(f32(0, 4))},"a\\u0062":${JSON.stringify(f32(4, 8))}}`;
    expect(() => new SafetensorsFile(raw(dupEscaped, Buffer.alloc(8)))).toThrow(/key "ab" more than once/);
    const dupField = '{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    expect(() => new SafetensorsFile(raw(dupField, Buffer.alloc(4)))).toThrow(/key "dtype" more than once/);
    expect(() => new SafetensorsFile(raw({ __metadata__: { format: 1 } }))).toThrow(
      /__metadata__ 'format' must be a string/,
    );
    expect(() => new SafetensorsFile(raw(` {"a":${JSON.stringify(f32(0, 4))}}`, Buffer.alloc(4)))).toThrow(
      /does not start with "\{"/,
    );
    expect(
      () => new SafetensorsFile(raw({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1))),
    ).toThrow(/unsupported dtype "F8"/);
    expect(duplicateKey('{"a":[{"a":1},{"a":2}],"b":"a,\\"a"}')).toBeNull();
    expect(duplicateKey('{"x":{"y":1},"z":{"y":2,"y":3}}')).toBe('y');
  });

  it('refuses a 58 MB header with a million entries, and too many entries, at once', { timeout: 30_000 }, () => {
    const parts: string[] = [];
    for (let i = 0; i < 1_000_000; i++) parts.push(`"tensor.${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    const big = `{${parts.join(',')}}`;
    expect(big.length).toBeGreaterThan(58e6);
    expect(() => new SafetensorsFile(raw(big))).toThrow(/header length \d+ bytes exceeds the limit of 16777216/);
    const many = SAFETENSORS_LIMITS.entries + 10;
    const entries: string[] = [];
    for (let i = 0; i < many; i++) entries.push(`"${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
    expect(() => new SafetensorsFile(raw(`{${entries.join(',')}}`))).toThrow(
      new RegExp(`lists ${many} entries, more than the limit of ${SAFETENSORS_LIMITS.entries}`),
    );
  });

  it('refuses FIFOs and other non-regular files as checkpoint files without blocking', {
    timeout: 20_000,
  }, async () => {
    const ckpt = join(dir, 'fifo-model');
    mkdirSync(ckpt);
    execFileSync('mkfifo', [
      join(ckpt, 'model.safetensors'),
      join(ckpt, 'config.json'),
      join(ckpt, 'model.safetensors.index.json'),
    ]);
    expect(() => new SafetensorsFile(join(ckpt, 'model.safetensors'))).toThrow(/is not a regular file \(a FIFO\)/);
    expect(() => new CheckpointReader(join(ckpt, 'model.safetensors'))).toThrow(/is a FIFO; expected a directory/);
    expect(() => new CheckpointReader(ckpt)).toThrow(
      /model\.safetensors\.index\.json is a FIFO, expected a regular file/,
    );
    rmSync(join(ckpt, 'model.safetensors.index.json'));
    expect(() => new CheckpointReader(ckpt)).toThrow(/model\.safetensors.*not a regular file \(a FIFO\)/);
    expect(() => loadConfig(ckpt)).toThrow(/config\.json is a FIFO, expected a regular file/);
    execFileSync('mkfifo', [join(ckpt, 'generation_config.json'), join(ckpt, 'preprocessor_config.json')]);
    expect(() => readGenerationConfig(ckpt)).toThrow(/generation_config\.json is a FIFO, expected a regular file/);
    await expect(loadPreprocessorConfig(ckpt)).rejects.toThrow(/preprocessor_config\.json is a FIFO/);
    expect(() => new SafetensorsFile(dir)).toThrow(/not a regular file \(a directory\)/);
  });
});
