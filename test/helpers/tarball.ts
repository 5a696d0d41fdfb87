import { gzipSync } from "node:zlib";

/** One entry of a hand-made tarball; the types a bundle should never hold are here on purpose. */
export interface TarEntry {
  name: string;
  body?: string | Buffer;
  type?: "file" | "directory" | "symlink" | "hardlink" | "fifo" | "chardev";
  linkname?: string;
}

const TYPE_FLAGS = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  chardev: "3",
  directory: "5",
  fifo: "6",
} as const;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function header(name: string, size: number, typeflag: string, linkname = ""): Buffer {
  const block = Buffer.alloc(512);
  block.write(name.slice(0, 100), 0, "utf8");
  block.write(octal(0o644, 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(0, 12), 136);
  block.write(" ".repeat(8), 148);
  block.write(typeflag, 156);
  block.write(linkname.slice(0, 100), 157);
  block.write("ustar\u000000", 257);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return block;
}

function padded(body: Buffer): Buffer {
  const rest = body.length % 512;
  return rest === 0 ? body : Buffer.concat([body, Buffer.alloc(512 - rest)]);
}

/** A pax extended header carrying a path too long for the ustar name field. */
function paxPath(name: string): Buffer {
  const record = (length: number) => `${length} path=${name}\n`;
  let length = record(0).length;
  while (record(length).length !== length) length = record(length).length;
  const body = Buffer.from(record(length));
  return Buffer.concat([header("PaxHeader", body.length, "x"), padded(body)]);
}

/** Writes a gzipped tar exactly as listed: duplicates, links, devices and odd paths included. */
export function tarball(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? "file";
    const body = type === "file" ? Buffer.from(entry.body ?? "") : Buffer.alloc(0);
    if (Buffer.byteLength(entry.name) > 100) blocks.push(paxPath(entry.name));
    blocks.push(header(entry.name, body.length, TYPE_FLAGS[type], entry.linkname));
    if (body.length > 0) blocks.push(padded(body));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}
