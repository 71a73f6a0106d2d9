// crc32c known answers on both code paths (SSE4.2 and the table), and the two
// paths agreeing on every length and alignment a record can have.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { native } from "../host/core/native.js";
import { crc32c } from "../host/core/crc32c.js";

// RFC 3720 (iSCSI) appendix B.4 and the "123456789" check value.
const vectors: [string, Buffer, number][] = [
  ["check string", Buffer.from("123456789"), 0xe3069283],
  ["empty", Buffer.alloc(0), 0],
  ["32 zero bytes", Buffer.alloc(32, 0x00), 0x8a9136aa],
  ["32 0xff bytes", Buffer.alloc(32, 0xff), 0x62a8ab43],
  ["32 incrementing", Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
  ["32 decrementing", Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
];

describe("crc32c", () => {
  const n = native();
  for (const [path, fn] of [["hardware", n.crc32cHw], ["software", n.crc32cSw]] as const) {
    for (const [name, buf, want] of vectors) {
      it(`${path} path: ${name} gives 0x${want.toString(16)}`, () => {
        expect((fn(0, buf, buf.length) as number) >>> 0).toBe(want);
      });
    }
  }

  it("reports whether the SSE4.2 path is really used", () => {
    // This machine class has SSE4.2; the hardware tests above are only a
    // hardware test where the CPU says so.
    const cpu = readFileSync("/proc/cpuinfo", "utf8");
    expect(n.cpuHasCrc32c()).toBe(/\bsse4_2\b/.test(cpu) ? 1 : 0);
  });

  it("both paths agree on every length 0..300 at every alignment 0..7, and when continued", () => {
    const big = randomBytes(320);
    for (let align = 0; align < 8; align++) {
      for (let len = 0; len <= 300; len++) {
        const b = big.subarray(align, align + len);
        const hw = n.crc32cHw(0, b, len) as number;
        const sw = n.crc32cSw(0, b, len) as number;
        if (hw !== sw) throw new Error(`mismatch at align ${align} len ${len}: hw ${hw} sw ${sw}`);
        // crc(a ++ b) == crc(b, continuing from crc(a))
        const cut = len >> 1;
        const cont = n.crc32c(n.crc32c(0, b.subarray(0, cut), cut) as number, b.subarray(cut), len - cut);
        if (cont !== hw) throw new Error(`continuation mismatch at align ${align} len ${len}`);
      }
    }
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
  });

  it("the three streams (a third of what is left each, combined by carry-less multiply) agree with the table on every length up to 4 KiB", () => {
    const big = randomBytes(4096 + 8);
    for (const align of [0, 3]) {
      for (let len = 0; len <= 4096; len++) {
        const b = big.subarray(align, align + len);
        const hw = n.crc32cHw(0, b, len) as number;
        const sw = n.crc32cSw(0, b, len) as number;
        if (hw !== sw) throw new Error(`mismatch at align ${align} len ${len}: hw ${hw} sw ${sw}`);
      }
    }
    const zeros = Buffer.alloc(1 << 20);
    expect(n.crc32cHw(0, zeros, zeros.length)).toBe(n.crc32cSw(0, zeros, zeros.length));
    // past 3 KiB a block's streams are capped at 1 KiB each: several blocks, then a shorter one
    const huge = randomBytes(70001);
    for (const len of [3071, 3072, 3073, 3167, 9000, 32768, 70001]) {
      expect(n.crc32cHw(7, huge, len), `len ${len}`).toBe(n.crc32cSw(7, huge, len));
    }
  });
});
