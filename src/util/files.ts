/**
 * Reading small files of a model folder (config.json, index files) safely: only regular files are read, so a FIFO,
 * socket or device in place of a checkpoint file is refused at once instead of blocking the open or the read
 * forever, and a file larger than the caller's bound is refused before it is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export function describeFileKind(s: Stats): string {
  if (s.isFIFO()) return 'a FIFO';
  if (s.isDirectory()) return 'a directory';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** The UTF-8 text of a regular file of at most maxBytes (default 64 MiB); anything else throws a clear error. */
export function readRegularFileSync(path: string, maxBytes = 64 * 1024 * 1024): string {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; regular files ignore the flag.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is ${describeFileKind(st)}, expected a regular file`);
    if (st.size > maxBytes) throw new Error(`${path} is ${st.size} bytes, more than the ${maxBytes} allowed`);
    const buf = Buffer.alloc(st.size);
    let done = 0;
    while (done < buf.length) {
      const got = readSync(fd, buf, done, buf.length - done, done);
      if (got <= 0) break;
      done += got;
    }
    return buf.subarray(0, done).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
