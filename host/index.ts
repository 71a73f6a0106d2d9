// index.ts -- the host's public API: `import { Pool } from "paste-host"`.
export * from "./errors.js";
export { CONST, MAGIC, PERSIST_MODES, type PersistMode } from "./layout.js";
export { Pool, type CreateOptions, type OpenOptions, type PoolInfo } from "./pool.js";
export { Runtime, type RuntimeOptions, type RecoveryReport, type RuntimeStats, type BatchResult, type Reply } from "./runtime.js";
export { Handler, ABI_VERSION } from "./handler.js";
export { inspectHandler, type HandlerInfo, MAX_HANDLER_BYTES, ALLOWED_IMPORTS } from "./validate.js";
export { buildHandler } from "./build.js";
export { walkLog, type DumpedRecord } from "./logtool.js";
export { createHandlerMemory, Window, WINDOW_BASE, HANDLER_BASE, WINDOW_MAX } from "./window.js";
export { crc32c } from "./crc32c.js";
export { parseSize, formatSize } from "./size.js";
export { serve, type ServeOptions } from "./server.js";
export { createLogger, type Logger, type LogFormat, type LogLevel } from "./logger.js";
export { deployHandler, fetchStatus, type AdminTarget } from "./status.js";
