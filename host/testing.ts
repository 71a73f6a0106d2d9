// testing.ts -- `import { openHandler, crashImages } from "paste-host/testing"`:
// unit tests for a handler, without a server (docs/handlers.md, "Testing a handler").
export { Connection, Harness, openHandler, compileHandler, type HarnessOptions, type SendOptions, type DeliveredReply } from "./tools/harness.js";
export { crashImages, type CrashImagesOptions, type CrashImagesResult, type CrashImageFailure, type CrashPoint } from "./tools/crashimages.js";
