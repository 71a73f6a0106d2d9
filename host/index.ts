// index.ts -- the host's public API: `import { Pool } from "paste-host"`.
export * from "./core/errors.js";
export { CONST, MAGIC, PERSIST_MODES, type PersistMode } from "./core/layout.js";
export { Pool, type CreateOptions, type OpenOptions, type PoolInfo } from "./core/pool.js";
export { Runtime, type RuntimeOptions, type RecoveryReport, type RuntimeStats, type BatchResult, type Reply } from "./core/runtime.js";
export { Handler, ABI_VERSION } from "./core/handler.js";
export { inspectHandler, type HandlerInfo, MAX_HANDLER_BYTES, ALLOWED_IMPORTS } from "./core/validate.js";
export { buildHandler } from "./core/build.js";
export { walkLog, type DumpedRecord } from "./core/logwalk.js";
export { createHandlerMemory, Window, WINDOW_BASE, HANDLER_BASE, WINDOW_MAX } from "./core/window.js";
export { crc32c } from "./core/crc32c.js";
export { parseSize, formatSize } from "./core/size.js";
export { serve, type ServeOptions } from "./server/server.js";
export { createLogger, type Logger, type LogFormat, type LogLevel } from "./server/logger.js";
export { deployHandler, fetchStatus, type AdminTarget } from "./tools/status.js";
