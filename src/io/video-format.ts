/**
 * Which ffmpeg demuxer may read a video: decided from the bytes (magic numbers) and, when the caller knows it, the
 * MIME type — never left to ffmpeg's own probing.
 *
 * Left to itself ffmpeg picks the demuxer by content, and some demuxers open other files: an HLS playlist
 * (`#EXTM3U` with a path on a line), a concat list (`ffconcat version 1.0` / `file '/etc/passwd'`), an SDP
 * description, an image sequence pattern, a QuickTime data reference. A media URL sent by a client would then read
 * (and reveal the existence of) files on the server. So video input is limited to real containers recognised by
 * their first bytes, the demuxer is forced with `-f`, and the protocols ffmpeg may open are limited to `file`
 * (`-protocol_whitelist file`, inherited by anything the demuxer opens) with QuickTime data references off.
 */
import { open } from 'node:fs/promises';

/** A container we decode: the ffmpeg demuxer forced for it and a name for messages. */
export interface VideoContainer {
  demuxer: string;
  name: string;
}

interface Signature {
  container: VideoContainer;
  test: (b: Uint8Array) => boolean;
}

const at = (b: Uint8Array, offset: number, ascii: string): boolean => {
  if (b.length < offset + ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) if (b[offset + i] !== ascii.charCodeAt(i)) return false;
  return true;
};
const bytesAt = (b: Uint8Array, offset: number, bytes: number[]): boolean =>
  b.length >= offset + bytes.length && bytes.every((x, i) => b[offset + i] === x);

const MOV: VideoContainer = { demuxer: 'mov', name: 'MP4/QuickTime' };
const MKV: VideoContainer = { demuxer: 'matroska', name: 'Matroska/WebM' };

const SIGNATURES: Signature[] = [
  // ISO BMFF / QuickTime: a box size then a box type; `ftyp` first in every MP4, older .mov files start elsewhere.
  { container: MOV, test: (b) => ['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].some((t) => at(b, 4, t)) },
  { container: MKV, test: (b) => bytesAt(b, 0, [0x1a, 0x45, 0xdf, 0xa3]) },
  { container: { demuxer: 'avi', name: 'AVI' }, test: (b) => at(b, 0, 'RIFF') && at(b, 8, 'AVI ') },
  {
    container: { demuxer: 'mpegts', name: 'MPEG-TS' },
    test: (b) => b.length >= 377 && b[0] === 0x47 && b[188] === 0x47 && b[376] === 0x47,
  },
  { container: { demuxer: 'mpeg', name: 'MPEG-PS' }, test: (b) => bytesAt(b, 0, [0, 0, 1, 0xba]) },
  { container: { demuxer: 'ogg', name: 'Ogg' }, test: (b) => at(b, 0, 'OggS') },
  { container: { demuxer: 'flv', name: 'FLV' }, test: (b) => at(b, 0, 'FLV') && b[3] === 1 },
  {
    container: { demuxer: 'asf', name: 'ASF/WMV' },
    test: (b) => bytesAt(b, 0, [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11]),
  },
  { container: { demuxer: 'nut', name: 'NUT' }, test: (b) => at(b, 0, 'nut/multimedia container') },
  { container: { demuxer: 'gif', name: 'GIF' }, test: (b) => at(b, 0, 'GIF87a') || at(b, 0, 'GIF89a') },
  // A still image is a one-frame video.
  { container: { demuxer: 'png_pipe', name: 'PNG' }, test: (b) => bytesAt(b, 0, [0x89, 0x50, 0x4e, 0x47]) },
  { container: { demuxer: 'jpeg_pipe', name: 'JPEG' }, test: (b) => bytesAt(b, 0, [0xff, 0xd8, 0xff]) },
  { container: { demuxer: 'webp_pipe', name: 'WebP' }, test: (b) => at(b, 0, 'RIFF') && at(b, 8, 'WEBP') },
];

/** MIME types of the containers above (lower case, parameters stripped). */
const MIME_DEMUXERS: Record<string, string[]> = {
  'video/mp4': ['mov'],
  'video/quicktime': ['mov'],
  'video/3gpp': ['mov'],
  'video/3gpp2': ['mov'],
  'video/x-m4v': ['mov'],
  'video/webm': ['matroska'],
  'video/x-matroska': ['matroska'],
  'video/matroska': ['matroska'],
  'video/x-msvideo': ['avi'],
  'video/avi': ['avi'],
  'video/msvideo': ['avi'],
  'video/mp2t': ['mpegts'],
  'video/mpeg': ['mpeg', 'mpegts'],
  'video/ogg': ['ogg'],
  'video/x-flv': ['flv'],
  'video/x-ms-wmv': ['asf'],
  'video/x-ms-asf': ['asf'],
  'image/gif': ['gif'],
  'image/png': ['png_pipe'],
  'image/jpeg': ['jpeg_pipe'],
  'image/webp': ['webp_pipe'],
};

/** MIME types that say nothing about the container: the bytes decide. */
const GENERIC_MIME = new Set(['', 'application/octet-stream', 'binary/octet-stream', 'video/*', 'video']);

/** Bytes sniffed: enough for every signature above (MPEG-TS needs three 188-byte packets). */
export const SNIFF_BYTES = 512;

const KNOWN = SIGNATURES.map((s) => s.container.name)
  .filter((n, i, a) => a.indexOf(n) === i)
  .join(', ');

/** A short, printable rendering of the first bytes (control bytes and non-ASCII escaped). */
export function previewBytes(b: Uint8Array, n = 24): string {
  let s = '';
  for (const x of b.subarray(0, n)) {
    if (x >= 0x20 && x < 0x7f && x !== 0x5c && x !== 0x22) s += String.fromCharCode(x);
    else if (x === 0x0a) s += '\\n';
    else s += `\\x${x.toString(16).padStart(2, '0')}`;
  }
  return `"${s}${b.length > n ? '…' : ''}"`;
}

/**
 * The container of a video from its first bytes (at least `SNIFF_BYTES` when the input is that long) and an
 * optional MIME type. Throws when the bytes are no known container (playlists, concat lists, SDP and other text
 * included) or the MIME type names a different one.
 */
export function detectVideoContainer(head: Uint8Array, mime?: string | null): VideoContainer {
  const found = SIGNATURES.find((s) => s.test(head))?.container;
  if (!found)
    throw new Error(
      `cannot read as a video: the first bytes ${previewBytes(head)} are not a known container (expected ${KNOWN}); playlists, concat lists and stream descriptions are not accepted`,
    );
  const m = (mime ?? '').split(';')[0]!.trim().toLowerCase();
  if (!GENERIC_MIME.has(m)) {
    const allowed = MIME_DEMUXERS[m];
    if (!allowed)
      throw new Error(
        `cannot read as a video: MIME type ${JSON.stringify(m.slice(0, 80))} is not a video container this decoder accepts (expected one of ${Object.keys(MIME_DEMUXERS).join(', ')})`,
      );
    if (!allowed.includes(found.demuxer))
      throw new Error(
        `cannot read as a video: the MIME type says ${m} but the bytes are ${found.name} (${previewBytes(head, 12)})`,
      );
  }
  return found;
}

/** Reads the first `SNIFF_BYTES` of a file. */
export async function readHead(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * ffprobe/ffmpeg input arguments that read exactly this file with exactly this demuxer: protocols limited to
 * `file` (also for anything the demuxer would open), QuickTime data references off, the path given as a `file:`
 * URL so no other protocol prefix in a file name is honoured.
 */
export function inputArgs(path: string, container: VideoContainer): string[] {
  const args = ['-protocol_whitelist', 'file', '-f', container.demuxer];
  if (container.demuxer === 'mov') args.push('-enable_drefs', '0');
  return [...args, '-i', `file:${path}`];
}
