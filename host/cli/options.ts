// options.ts -- what every command's options share: parsers whose errors
// become commander's usage errors, and the --persist choice.

import { InvalidArgumentError, Option } from "commander";
import { PERSIST_MODES } from "../core/layout.js";

/** optionParser -- commander calls it with the raw text; a thrown error becomes a usage error (exit 2). */
export function optionParser<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

export const persistOption = () =>
  new Option("--persist <mode>", "persistence mode: auto (DAX or tmpfs: pmem, else msync), pmem, msync or none")
    .choices(PERSIST_MODES as unknown as string[]);
