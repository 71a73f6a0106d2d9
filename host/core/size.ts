// size.ts -- byte sizes as people type them ("64M", "1G", "2048") and as the
// CLI prints them. Binary units: 1K = 1024, as dd, truncate and fallocate use.

import { UsageError } from "./errors.js";

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** parseSize -- "64M" -> 67108864; UsageError naming the input when it is not a size. */
export function parseSize(text: string, what = "size"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$/.exec(String(text));
  if (!m) {
    throw new UsageError(
      `invalid ${what} '${text}': use a number with an optional K, M, G or T suffix (binary units), e.g. 64M`,
    );
  }
  const bytes = Number(m[1]) * UNITS[m[2].toUpperCase()];
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`invalid ${what} '${text}': must be a whole number of bytes greater than 0`);
  }
  return bytes;
}

/** formatSize -- 67108864 -> "64.0 MiB"; exact byte counts below 1 KiB. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** parseCount -- a positive integer option ("--rings 2"); UsageError otherwise. */
export function parseCount(text: string, what: string): number {
  if (!/^\s*\d+\s*$/.test(String(text)) || Number(text) <= 0 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`invalid ${what} '${text}': must be a whole number greater than 0`);
  }
  return Number(text);
}
