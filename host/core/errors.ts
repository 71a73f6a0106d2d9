// errors.ts -- the error catalogue. Every failure a user can meet has a stable
// code (PASTE_ERR_*) that never changes once assigned and a class of its own;
// the message may improve, the code may not (Node's lib/internal/errors.js).
// The README's error table lists every code here; a test keeps them in step.
//
// Native functions return a negative number on failure (native/paste.h, enum
// paste_err); fromNative() turns it into the class for that condition, with the
// library's last-error message.

export class PasteError extends Error {
  /** Extra structured detail (e.g. a handler trap's file and line). */
  detail?: Record<string, unknown>;
  /** Stable machine-readable code, e.g. PASTE_ERR_POOL_LOCKED. */
  readonly code: string;
  /** Process exit status the CLI uses for this error. */
  readonly exitCode: number = 1;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

// One class per condition. `native` is the number from enum paste_err, when the
// condition comes from the native library.
function define(name: string, code: string, native: number | null, summary: string, remedy: string) {
  const C = class extends PasteError {
    static readonly code = code;
    static readonly native = native;
    static readonly summary = summary;
    static readonly remedy = remedy;
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
    }
  };
  Object.defineProperty(C, "name", { value: name });
  return C;
}

export const IoError = define("IoError", "PASTE_ERR_IO", -1,
  "a system call failed; the message carries the operating system's reason",
  "read the reason (permissions, disk errors) and fix the environment");
export const InvalidArgumentError = define("InvalidArgumentError", "PASTE_ERR_INVALID_ARG", -2,
  "a parameter is out of range (buffer size, ring count, pool too small, window too large)",
  "change the option the message names");
export const PoolExistsError = define("PoolExistsError", "PASTE_ERR_EXISTS", -3,
  "`pool create` refused to overwrite an existing file",
  "pick another path, or pass --force to replace the file");
export const PoolNotFoundError = define("PoolNotFoundError", "PASTE_ERR_NOT_FOUND", -4,
  "no file at the pool path",
  "check the path, or create the pool with `paste-host pool create PATH --size 64M`");
export const NotAPoolError = define("NotAPoolError", "PASTE_ERR_NOT_A_POOL", -5,
  "the file is not a pool: no PASTPOOL superblock at offset 0",
  "point at a pool file; nothing was written to this one");
export const BadMagicError = define("BadMagicError", "PASTE_ERR_BAD_MAGIC", -6,
  "the superblock is intact except for its magic: a damaged pool",
  "restore the pool from a copy; the file was left unchanged");
export const UnsupportedVersionError = define("UnsupportedVersionError", "PASTE_ERR_VERSION", -7,
  "the pool was written by a newer format version or uses unknown features",
  "upgrade paste-host");
export const PoolCorruptError = define("PoolCorruptError", "PASTE_ERR_POOL_CORRUPT", -8,
  "the superblock checksum or geometry does not hold",
  "restore the pool from a copy; the file was left unchanged");
export const PoolTruncatedError = define("PoolTruncatedError", "PASTE_ERR_POOL_TRUNCATED", -9,
  "the file is shorter than its superblock says",
  "restore the full file; a truncated pool has lost buffers");
export const PoolLockedError = define("PoolLockedError", "PASTE_ERR_POOL_LOCKED", -10,
  "another process has the pool open for writing",
  "stop that process (the message names its pid) or use another pool");
export const NoSpaceError = define("NoSpaceError", "PASTE_ERR_NO_SPACE", -11,
  "the filesystem cannot hold a pool of the requested size",
  "free space, or create a smaller pool");
export const WindowError = define("WindowError", "PASTE_ERR_WINDOW", -12,
  "the pool's window could not be mapped into the handler's WebAssembly.Memory",
  "report it with the message; the memory must be page aligned and large enough");
export const ReadOnlyError = define("ReadOnlyError", "PASTE_ERR_READ_ONLY", -13,
  "a write was attempted through a pool opened read-only",
  "open the pool read-write");
export const LogFullError = define("LogFullError", "PASTE_ERR_LOG_FULL", -14,
  "the log index has no room for another record until committed records are trimmed",
  "trim (the handler's trim(), or Runtime.trim); give the pool a larger --log-size");
export const PoolFullError = define("PoolFullError", "PASTE_ERR_POOL_FULL", -15,
  "every buffer is referenced by the log; receiving pauses until a trim",
  "trim committed records, or create a larger pool");
export const HandlerError = define("HandlerError", "PASTE_ERR_HANDLER", -16,
  "a handler named a buffer, slot, ring index or memory range that is not its own",
  "fix the handler; the host refused the request and kept running");
export const StateError = define("StateError", "PASTE_ERR_STATE", -17,
  "a runtime call out of order (pool not recovered, a handler import called outside a host call)",
  "a bug in the calling code: open read-write and recover before the data path; call handler exports through the Runtime");
export const AddressInUseError = define("AddressInUseError", "PASTE_ERR_ADDR_IN_USE", -18,
  "the listen address is already taken by another process",
  "stop the other server or pick another port with --listen");
export const UnsupportedError = define("UnsupportedError", "PASTE_ERR_UNSUPPORTED", -20,
  "the kernel or a sandbox refuses what was asked: io_uring (kernel.io_uring_disabled, a container's seccomp profile, an old kernel)",
  "with --port-engine auto (the default) the host falls back to epoll by itself and says why; --port-engine epoll asks for it outright");
export const WalClientFailedError = define("WalClientFailedError", "PASTE_ERR_WAL_CLIENT", null,
  "`paste-host wal-client` saw a frame without exactly one in-order acknowledgement",
  "the message lists the connections and sequence numbers; check the server's log");
export const TortureLossError = define("TortureLossError", "PASTE_ERR_TORTURE_LOSS", null,
  "`paste-host torture` found an acknowledged write missing or damaged after a kill and restart",
  "a durability bug: the listed keys and rounds reproduce it; report them");
export const SimCrashedError = define("SimCrashedError", "PASTE_ERR_SIM_CRASHED", -19,
  "the persistence simulator's power failure happened; nothing after it is acknowledged",
  "expected inside `paste-host crashtest`; elsewhere, do not enable the simulator");
export const CrashtestFailedError = define("CrashtestFailedError", "PASTE_ERR_CRASHTEST", null,
  "`paste-host crashtest` found a crash image whose recovery lost or exposed records",
  "rerun the printed --seed/--point to get the same image; the invariant it breaks is named");
export const UnauthorizedError = define("UnauthorizedError", "PASTE_ERR_UNAUTHORIZED", null,
  "the admin API refused a request without a valid bearer token",
  "use the token the host wrote to POOL.token (paste-host status --pool POOL finds it)");
export const AdminFailedError = define("AdminFailedError", "PASTE_ERR_ADMIN", null,
  "an admin API request failed in a way the API does not foresee (a client gone mid-upload, a hook that threw); answered 500 or hung up on, the host serves on",
  "the host's log line names the method, path and message; report it if it repeats");
export const HandlerTrapError = define("HandlerTrapError", "PASTE_ERR_HANDLER_TRAP", null,
  "a handler trapped or aborted; the message carries its text, file and line",
  "fix the handler at the reported location; the host kept running");
export const HandlerTimeoutError = define("HandlerTimeoutError", "PASTE_ERR_HANDLER_TIMEOUT", null,
  "a handler call ran past --batch-budget-ms; its worker was stopped and the previous good handler restored",
  "find the loop at the reported phase; raise --batch-budget-ms only if the work is legitimately long");
export const HandlerMemoryError = define("HandlerMemoryError", "PASTE_ERR_HANDLER_MEMORY", null,
  "a handler ran out of its --memory-limit heap; it was stopped and the previous good handler restored",
  "free what the handler keeps, or raise --memory-limit");
export const DeployBusyError = define("DeployBusyError", "PASTE_ERR_DEPLOY_BUSY", null,
  "a deploy could not start: another deploy is running, or connections kept a request half sent past the wait",
  "retry the deploy; the old handler kept serving");
export const DeployFailedError = define("DeployFailedError", "PASTE_ERR_DEPLOY_FAILED", null,
  "the new handler failed while taking over (trap, budget or memory in on_init or on_replay); nothing changed",
  "fix the handler (the message names the phase and the cause); the old handler kept serving");
export const HandlerConfigError = define("HandlerConfigError", "PASTE_ERR_HANDLER_CONFIG", null,
  "a handler's config was refused: larger than the 1 MiB limit, or a file that cannot be read",
  "give a smaller config (--handler-config, deploy --config); keep large data in the log or in the module");
export const HandlerInvalidError = define("HandlerInvalidError", "PASTE_ERR_HANDLER_INVALID", null,
  "a file is not a loadable handler: not Wasm, missing exports, wrong ABI version, unknown imports",
  "build it with `paste-host build handler.ts -o handler.wasm`");
export const BuildError = define("BuildError", "PASTE_ERR_BUILD", null,
  "`paste-host build` could not compile the handler (the compiler's diagnostics follow)",
  "fix the errors asc reports at the lines it names");
export const LogCorruptError = define("LogCorruptError", "PASTE_ERR_LOG_CORRUPT", null,
  "`log verify` found records whose payload no longer matches its checksum, or a torn log",
  "the named sequence numbers were altered after commit; restore them from a replica");
export const NativeMissingError = define("NativeMissingError", "PASTE_ERR_NATIVE_MISSING", null,
  "the native library native/build/libpaste.so is not built or does not load",
  "run `npm install` (or `npm run build:native`) with a C compiler present");
export const WindowMovedError = define("WindowMovedError", "PASTE_ERR_WINDOW_MOVED", null,
  "the WebAssembly.Memory moved after a grow, so the window no longer aliases the pool (fatal)",
  "report it with the Node version; the host stops rather than serve from unmapped memory");
export const NoPreviousHandlerError = define("NoPreviousHandlerError", "PASTE_ERR_NO_PREVIOUS_HANDLER", null,
  "a rollback was asked for, but this host keeps no handler before the serving one (it is the first it ran)",
  "deploy the handler you want with `paste-host deploy` (or the console's deploy)");
export const DataPathDownError = define("DataPathDownError", "PASTE_ERR_DATA_PATH_DOWN", null,
  "the admin API asked the data path for something (a page of the log) while it was restarting or stopping",
  "retry in a moment; `paste-host status` and /healthz say when it serves again");
export const UsageError = define("UsageError", "PASTE_ERR_USAGE", null,
  "a command-line argument is malformed (a size, a mode, a number)",
  "see `paste-host <command> --help`");
export const PoolClosedError = define("PoolClosedError", "PASTE_ERR_CLOSED", null,
  "a pool or runtime was used after it was closed",
  "a bug in the calling code: keep the pool or runtime open while it is used");

/** Every error class, in catalogue order (the README table follows it). */
export const catalogue = [
  IoError, InvalidArgumentError, PoolExistsError, PoolNotFoundError, NotAPoolError,
  BadMagicError, UnsupportedVersionError, PoolCorruptError, PoolTruncatedError,
  PoolLockedError, NoSpaceError, WindowError, ReadOnlyError, LogFullError, PoolFullError,
  HandlerError, StateError, AddressInUseError, SimCrashedError, UnsupportedError, WalClientFailedError, TortureLossError,
  CrashtestFailedError, UnauthorizedError, AdminFailedError, HandlerTrapError, HandlerTimeoutError, HandlerMemoryError,
  DeployBusyError, DeployFailedError, NoPreviousHandlerError, DataPathDownError, HandlerConfigError, HandlerInvalidError, BuildError, LogCorruptError,
  NativeMissingError, WindowMovedError, UsageError, PoolClosedError,
] as const;

const byNative = new Map<number, (typeof catalogue)[number]>();
for (const C of catalogue) if (C.native !== null) byNative.set(C.native, C);

/** fromNative -- the error for a negative native return code and its message. */
export function fromNative(rc: number, message: string): PasteError {
  const C = byNative.get(rc);
  if (!C) return new IoError(`${message || "native call failed"} (native code ${rc})`);
  return new C(message || C.summary);
}
