import MinidumpFormat

/// Crash reason strings and crash addresses as rust-minidump derives them (`minidump.md` §5).
enum CrashReason {
    static func address(_ e: ExceptionInfo, windows: Bool, pointerSize: Int) -> UInt64 {
        var a = e.address
        if windows, e.code == 0xC000_0005 || e.code == 0xC000_0006, e.parameters.count >= 2 { a = e.parameters[1] }
        return pointerSize == 4 ? a & 0xFFFF_FFFF : a
    }

    static func describe(_ e: ExceptionInfo, platform: UInt32) -> String {
        switch platform {
        case 0...3: return windows(e)
        case 0x8101, 0x8102: return mac(e)
        case 0x8201, 0x8203, 0x8000, 0x8202, 0x8206: return linux(e)
        default: return String(format: "unknown 0x%08x", e.code)
        }
    }

    // MARK: Windows

    static let windowsCodes: [UInt32: String] = [
        0x4000_0015: "STATUS_FATAL_APP_EXIT", 0x4000_001C: "STATUS_WX86_UNSIMULATE", 0x4000_001D: "STATUS_WX86_CONTINUE",
        0x4000_001E: "STATUS_WX86_SINGLE_STEP", 0x4000_001F: "STATUS_WX86_BREAKPOINT",
        0x4001_0005: "DBG_CONTROL_C", 0x4001_0008: "DBG_CONTROL_BREAK",
        0x8000_0001: "EXCEPTION_GUARD_PAGE", 0x8000_0002: "EXCEPTION_DATATYPE_MISALIGNMENT",
        0x8000_0003: "EXCEPTION_BREAKPOINT", 0x8000_0004: "EXCEPTION_SINGLE_STEP",
        0xC000_0005: "EXCEPTION_ACCESS_VIOLATION", 0xC000_0006: "EXCEPTION_IN_PAGE_ERROR",
        0xC000_0008: "EXCEPTION_INVALID_HANDLE", 0xC000_000D: "STATUS_INVALID_PARAMETER",
        0xC000_0017: "STATUS_NO_MEMORY", 0xC000_001D: "EXCEPTION_ILLEGAL_INSTRUCTION",
        0xC000_0025: "EXCEPTION_NONCONTINUABLE_EXCEPTION", 0xC000_0026: "EXCEPTION_INVALID_DISPOSITION",
        0xC000_008C: "EXCEPTION_ARRAY_BOUNDS_EXCEEDED", 0xC000_008D: "EXCEPTION_FLT_DENORMAL_OPERAND",
        0xC000_008E: "EXCEPTION_FLT_DIVIDE_BY_ZERO", 0xC000_008F: "EXCEPTION_FLT_INEXACT_RESULT",
        0xC000_0090: "EXCEPTION_FLT_INVALID_OPERATION", 0xC000_0091: "EXCEPTION_FLT_OVERFLOW",
        0xC000_0092: "EXCEPTION_FLT_STACK_CHECK", 0xC000_0093: "EXCEPTION_FLT_UNDERFLOW",
        0xC000_0094: "EXCEPTION_INT_DIVIDE_BY_ZERO", 0xC000_0095: "EXCEPTION_INT_OVERFLOW",
        0xC000_0096: "EXCEPTION_PRIV_INSTRUCTION", 0xC000_00FD: "EXCEPTION_STACK_OVERFLOW",
        0xC000_0135: "STATUS_DLL_NOT_FOUND", 0xC000_0138: "STATUS_ORDINAL_NOT_FOUND",
        0xC000_0139: "STATUS_ENTRYPOINT_NOT_FOUND", 0xC000_013A: "STATUS_CONTROL_C_EXIT",
        0xC000_0142: "STATUS_DLL_INIT_FAILED", 0xC000_0194: "EXCEPTION_POSSIBLE_DEADLOCK",
        0xC000_01B2: "STATUS_INVALID_THREAD", 0xC000_0264: "STATUS_RESOURCE_NOT_OWNED",
        0xC000_02B4: "STATUS_FLOAT_MULTIPLE_FAULTS", 0xC000_02B5: "STATUS_FLOAT_MULTIPLE_TRAPS",
        0xC000_02C9: "STATUS_REG_NAT_CONSUMPTION", 0xC000_0374: "STATUS_HEAP_CORRUPTION",
        0xC000_0409: "EXCEPTION_STACK_BUFFER_OVERRUN", 0xC000_0417: "STATUS_INVALID_CRUNTIME_PARAMETER",
        0xC000_041D: "STATUS_FATAL_USER_CALLBACK_EXCEPTION", 0xC000_0420: "STATUS_ASSERTION_FAILURE",
        0xC015_000F: "STATUS_SXS_EARLY_DEACTIVATION", 0xC015_0010: "STATUS_SXS_INVALID_DEACTIVATION",
        0xE06D_7363: "Unhandled C++ Exception", 0xE0000008: "Out of Memory", 0x0517_A7ED: "Simulated Exception",
        0xC000_0602: "STATUS_FAIL_FAST_EXCEPTION", 0xC000_070A: "STATUS_THREADPOOL_HANDLE_EXCEPTION",
        0x8000_0029: "STATUS_UNWIND_CONSOLIDATE", 0xC000_0027: "STATUS_UNWIND", 0xC000_0028: "STATUS_BAD_STACK",
        0xC000_0029: "STATUS_INVALID_UNWIND_TARGET",
    ]

    static let fastFailCodes: [UInt64: String] = [
        0: "FAST_FAIL_LEGACY_GS_VIOLATION", 1: "FAST_FAIL_VTGUARD_CHECK_FAILURE", 2: "FAST_FAIL_STACK_COOKIE_CHECK_FAILURE",
        3: "FAST_FAIL_CORRUPT_LIST_ENTRY", 4: "FAST_FAIL_INCORRECT_STACK", 5: "FAST_FAIL_INVALID_ARG",
        6: "FAST_FAIL_GS_COOKIE_INIT", 7: "FAST_FAIL_FATAL_APP_EXIT", 8: "FAST_FAIL_RANGE_CHECK_FAILURE",
        9: "FAST_FAIL_UNSAFE_REGISTRY_ACCESS", 10: "FAST_FAIL_GUARD_ICALL_CHECK_FAILURE", 11: "FAST_FAIL_GUARD_WRITE_CHECK_FAILURE",
        12: "FAST_FAIL_INVALID_FIBER_SWITCH", 13: "FAST_FAIL_INVALID_SET_OF_CONTEXT", 14: "FAST_FAIL_INVALID_REFERENCE_COUNT",
        18: "FAST_FAIL_INVALID_JUMP_BUFFER", 19: "FAST_FAIL_MRDATA_MODIFIED", 20: "FAST_FAIL_CERTIFICATION_FAILURE",
        21: "FAST_FAIL_INVALID_EXCEPTION_CHAIN", 22: "FAST_FAIL_CRYPTO_LIBRARY", 23: "FAST_FAIL_INVALID_CALL_IN_DLL_CALLOUT",
        24: "FAST_FAIL_INVALID_IMAGE_BASE", 25: "FAST_FAIL_DLOAD_PROTECTION_FAILURE", 26: "FAST_FAIL_UNSAFE_EXTENSION_CALL",
        27: "FAST_FAIL_DEPRECATED_SERVICE_INVOKED", 28: "FAST_FAIL_INVALID_BUFFER_ACCESS", 29: "FAST_FAIL_INVALID_BALANCED_TREE",
        30: "FAST_FAIL_INVALID_NEXT_THREAD", 31: "FAST_FAIL_GUARD_ICALL_CHECK_SUPPRESSED", 32: "FAST_FAIL_APCS_DISABLED",
        33: "FAST_FAIL_INVALID_IDLE_STATE", 34: "FAST_FAIL_MRDATA_PROTECTION_FAILURE", 35: "FAST_FAIL_UNEXPECTED_HEAP_EXCEPTION",
        36: "FAST_FAIL_INVALID_LOCK_STATE", 37: "FAST_FAIL_GUARD_JUMPTABLE", 38: "FAST_FAIL_INVALID_LONGJUMP_TARGET",
        39: "FAST_FAIL_INVALID_DISPATCH_CONTEXT", 40: "FAST_FAIL_INVALID_THREAD", 41: "FAST_FAIL_INVALID_SYSCALL_NUMBER",
        42: "FAST_FAIL_INVALID_FILE_OPERATION", 43: "FAST_FAIL_LPAC_ACCESS_DENIED", 44: "FAST_FAIL_GUARD_SS_FAILURE",
        45: "FAST_FAIL_LOADER_CONTINUITY_FAILURE", 46: "FAST_FAIL_GUARD_EXPORT_SUPPRESSION_FAILURE",
        47: "FAST_FAIL_INVALID_CONTROL_STACK", 48: "FAST_FAIL_SET_CONTEXT_DENIED", 49: "FAST_FAIL_INVALID_IAT",
        50: "FAST_FAIL_HEAP_METADATA_CORRUPTION", 51: "FAST_FAIL_PAYLOAD_RESTRICTION_VIOLATION",
        52: "FAST_FAIL_LOW_LABEL_ACCESS_DENIED", 53: "FAST_FAIL_ENCLAVE_CALL_FAILURE",
        54: "FAST_FAIL_UNHANDLED_LSS_EXCEPTON", 55: "FAST_FAIL_ADMINLESS_ACCESS_DENIED",
        56: "FAST_FAIL_UNEXPECTED_CALL", 57: "FAST_FAIL_CONTROL_INVALID_RETURN_ADDRESS",
        58: "FAST_FAIL_UNEXPECTED_HOST_BEHAVIOR", 59: "FAST_FAIL_FLAGS_CORRUPTION", 60: "FAST_FAIL_VEH_CORRUPTION",
        61: "FAST_FAIL_ETW_CORRUPTION", 62: "FAST_FAIL_RIO_ABORT", 63: "FAST_FAIL_INVALID_PFN",
        64: "FAST_FAIL_GUARD_ICALL_CHECK_FAILURE_XFG", 65: "FAST_FAIL_CAST_GUARD", 66: "FAST_FAIL_HOST_VISIBILITY_CHANGE",
        67: "FAST_FAIL_KERNEL_CET_SHADOW_STACK_ASSIST", 68: "FAST_FAIL_PATCH_CALLBACK_FAILED",
        69: "FAST_FAIL_NTDLL_PATCH_FAILED", 70: "FAST_FAIL_INVALID_FLS_DATA", 0xFFFF_FFFF: "FAST_FAIL_INVALID_FAST_FAIL_CODE",
    ]

    static func windows(_ e: ExceptionInfo) -> String {
        switch e.code {
        case 0xC000_0005:
            guard let kind = e.parameters.first else { return "EXCEPTION_ACCESS_VIOLATION" }
            switch kind {
            case 0: return "EXCEPTION_ACCESS_VIOLATION_READ"
            case 1: return "EXCEPTION_ACCESS_VIOLATION_WRITE"
            case 8: return "EXCEPTION_ACCESS_VIOLATION_EXEC"
            default: return "EXCEPTION_ACCESS_VIOLATION"
            }
        case 0xC000_0006:
            guard e.parameters.count >= 3 else { return "EXCEPTION_IN_PAGE_ERROR" }
            let kind = ["READ", "WRITE"].indices.contains(Int(e.parameters[0])) ? ["READ", "WRITE"][Int(e.parameters[0])]
                : e.parameters[0] == 8 ? "EXEC" : "UNKNOWN"
            let status = UInt32(truncatingIfNeeded: e.parameters[2])
            return "EXCEPTION_IN_PAGE_ERROR_\(kind) / \(windowsCodes[status] ?? String(format: "0x%08x", status))"
        case 0xC000_0409:
            guard let code = e.parameters.first else { return "EXCEPTION_STACK_BUFFER_OVERRUN" }
            return "EXCEPTION_STACK_BUFFER_OVERRUN / \(fastFailCodes[code] ?? String(format: "0x%08x", code))"
        default:
            return windowsCodes[e.code] ?? String(format: "unknown 0x%08x", e.code)
        }
    }

    /// Common Win32 error codes, for a thread's `GetLastError` value; others print as hex.
    static let winErrors: [UInt32: String] = [
        0: "ERROR_SUCCESS", 1: "ERROR_INVALID_FUNCTION", 2: "ERROR_FILE_NOT_FOUND", 3: "ERROR_PATH_NOT_FOUND",
        4: "ERROR_TOO_MANY_OPEN_FILES", 5: "ERROR_ACCESS_DENIED", 6: "ERROR_INVALID_HANDLE", 8: "ERROR_NOT_ENOUGH_MEMORY",
        13: "ERROR_INVALID_DATA", 14: "ERROR_OUTOFMEMORY", 18: "ERROR_NO_MORE_FILES", 32: "ERROR_SHARING_VIOLATION",
        38: "ERROR_HANDLE_EOF", 50: "ERROR_NOT_SUPPORTED", 87: "ERROR_INVALID_PARAMETER", 109: "ERROR_BROKEN_PIPE",
        122: "ERROR_INSUFFICIENT_BUFFER", 123: "ERROR_INVALID_NAME", 126: "ERROR_MOD_NOT_FOUND", 127: "ERROR_PROC_NOT_FOUND",
        183: "ERROR_ALREADY_EXISTS", 203: "ERROR_ENVVAR_NOT_FOUND", 234: "ERROR_MORE_DATA", 258: "WAIT_TIMEOUT",
        259: "ERROR_NO_MORE_ITEMS", 487: "ERROR_INVALID_ADDRESS", 997: "ERROR_IO_PENDING", 998: "ERROR_NOACCESS",
        1008: "ERROR_NO_TOKEN", 1168: "ERROR_NOT_FOUND", 1400: "ERROR_INVALID_WINDOW_HANDLE", 1813: "ERROR_RESOURCE_TYPE_NOT_FOUND",
        1814: "ERROR_RESOURCE_NAME_NOT_FOUND", 10035: "WSAEWOULDBLOCK",
    ]

    static func lastErrorName(_ code: UInt32) -> String {
        winErrors[code] ?? String(format: "0x%08x", code)
    }

    // MARK: Linux

    static let signals: [UInt32: String] = [
        1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
        9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
        16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU",
        23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO",
        30: "SIGPWR", 31: "SIGSYS", 0xFFFF_FFFF: "DUMP_REQUESTED",
    ]
    static let siCodes: [String: [UInt32: String]] = [
        "SIGILL": [1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP", 5: "ILL_PRVOPC", 6: "ILL_PRVREG",
                   7: "ILL_COPROC", 8: "ILL_BADSTK"],
        "SIGFPE": [1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF", 5: "FPE_FLTUND", 6: "FPE_FLTRES",
                   7: "FPE_FLTINV", 8: "FPE_FLTSUB"],
        "SIGSEGV": [1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"],
        "SIGBUS": [1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR", 5: "BUS_MCEERR_AO"],
        "SIGTRAP": [1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT"],
        "SIGSYS": [1: "SYS_SECCOMP"],
    ]
    static let genericSiCodes: [UInt32: String] = [
        0: "SI_USER", 0x80: "SI_KERNEL", 0xFFFF_FFFF: "SI_QUEUE", 0xFFFF_FFFE: "SI_TIMER", 0xFFFF_FFFD: "SI_MESGQ",
        0xFFFF_FFFC: "SI_ASYNCIO", 0xFFFF_FFFB: "SI_SIGIO", 0xFFFF_FFFA: "SI_TKILL",
    ]

    static func linux(_ e: ExceptionInfo) -> String {
        guard let signal = signals[e.code] else { return String(format: "unknown 0x%08x", e.code) }
        if let name = siCodes[signal]?[e.flags] { return "\(signal) / \(name)" }
        if signal == "SIGSEGV" || signal == "SIGILL" || signal == "SIGFPE" || signal == "SIGBUS" || signal == "SIGTRAP" || signal == "SIGSYS" {
            if let generic = genericSiCodes[e.flags], e.flags != 0 { return "\(signal) / \(generic)" }
            return signal
        }
        if e.flags == 0 { return signal }
        if let generic = genericSiCodes[e.flags] { return "\(signal) / \(generic)" }
        return String(format: "%@ / 0x%08x", signal, e.flags)
    }

    // MARK: macOS

    static let machExceptions: [UInt32: String] = [
        1: "EXC_BAD_ACCESS", 2: "EXC_BAD_INSTRUCTION", 3: "EXC_ARITHMETIC", 4: "EXC_EMULATION", 5: "EXC_SOFTWARE",
        6: "EXC_BREAKPOINT", 7: "EXC_SYSCALL", 8: "EXC_MACH_SYSCALL", 9: "EXC_RPC_ALERT", 10: "EXC_CRASH",
        11: "EXC_RESOURCE", 12: "EXC_GUARD", 13: "EXC_CORPSE_NOTIFY", 0x4350_4F50: "Simulated Exception",
    ]
    static let kernCodes: [UInt32: String] = [
        1: "KERN_INVALID_ADDRESS", 2: "KERN_PROTECTION_FAILURE", 3: "KERN_NO_SPACE", 4: "KERN_INVALID_ARGUMENT",
        5: "KERN_FAILURE", 6: "KERN_RESOURCE_SHORTAGE", 7: "KERN_NOT_RECEIVER", 8: "KERN_NO_ACCESS",
        9: "KERN_MEMORY_FAILURE", 10: "KERN_MEMORY_ERROR", 11: "KERN_ALREADY_IN_SET", 12: "KERN_NOT_IN_SET",
        13: "KERN_NAME_EXISTS", 14: "KERN_ABORTED", 15: "KERN_INVALID_NAME", 16: "KERN_INVALID_TASK",
        17: "KERN_INVALID_RIGHT", 18: "KERN_INVALID_VALUE", 19: "KERN_UREFS_OVERFLOW", 20: "KERN_INVALID_CAPABILITY",
        21: "KERN_RIGHT_EXISTS", 22: "KERN_INVALID_HOST", 23: "KERN_MEMORY_PRESENT", 24: "KERN_MEMORY_DATA_MOVED",
        25: "KERN_MEMORY_RESTART_COPY", 26: "KERN_INVALID_PROCESSOR_SET", 27: "KERN_POLICY_LIMIT",
        28: "KERN_INVALID_POLICY", 29: "KERN_INVALID_OBJECT", 30: "KERN_ALREADY_WAITING", 31: "KERN_DEFAULT_SET",
        32: "KERN_EXCEPTION_PROTECTED", 33: "KERN_INVALID_LEDGER", 34: "KERN_INVALID_MEMORY_CONTROL",
        35: "KERN_INVALID_SECURITY", 36: "KERN_NOT_DEPRESSED", 37: "KERN_TERMINATED", 38: "KERN_LOCK_SET_DESTROYED",
        39: "KERN_LOCK_UNSTABLE", 40: "KERN_LOCK_OWNED", 41: "KERN_LOCK_OWNED_SELF", 42: "KERN_SEMAPHORE_DESTROYED",
        43: "KERN_RPC_SERVER_TERMINATED", 44: "KERN_RPC_TERMINATE_ORPHAN", 45: "KERN_RPC_CONTINUE_ORPHAN",
        46: "KERN_NOT_SUPPORTED", 47: "KERN_NODE_DOWN", 48: "KERN_NOT_WAITING", 49: "KERN_OPERATION_TIMED_OUT",
        50: "KERN_CODESIGN_ERROR", 51: "KERN_POLICY_STATIC", 52: "KERN_INSUFFICIENT_BUFFER_SIZE",
        0x101: "EXC_I386_GPFLT", 0x100: "EXC_ARM_DA_ALIGN",
    ]

    static func mac(_ e: ExceptionInfo) -> String {
        guard let name = machExceptions[e.code] else { return String(format: "unknown 0x%08x / 0x%08x", e.code, e.flags) }
        if e.code == 0x4350_4F50 { return name }
        switch e.code {
        case 1: // EXC_BAD_ACCESS
            if let k = kernCodes[e.flags], e.flags < 0x100 { return "\(name) / \(k)" }
            if e.flags == 0x0d { return "\(name) / EXC_I386_GPFLT" }
        case 2:
            let codes: [UInt32: String] = [1: "EXC_I386_INVOP", 0xA: "EXC_I386_INVTSSFLT", 0xB: "EXC_I386_SEGNPFLT",
                                           0xC: "EXC_I386_STKFLT", 0xD: "EXC_I386_GPFLT", 0xF: "EXC_I386_ALIGNFLT"]
            if let c = codes[e.flags] { return "\(name) / \(c)" }
        case 3:
            let codes: [UInt32: String] = [1: "EXC_I386_DIV", 2: "EXC_I386_INTO", 3: "EXC_I386_NOEXT", 4: "EXC_I386_EXTOVR",
                                           5: "EXC_I386_EXTERR", 6: "EXC_I386_EMERR", 7: "EXC_I386_BOUND", 8: "EXC_I386_SSEEXTERR"]
            if let c = codes[e.flags] { return "\(name) / \(c)" }
        case 5:
            let codes: [UInt32: String] = [0xDEADC0DE: "SIGABRT", 0x0001_0003: "EXC_UNIX_BAD_SYSCALL", 0x0001_0004: "EXC_UNIX_BAD_PIPE",
                                           0x0001_0005: "EXC_UNIX_ABORT"]
            if let c = codes[e.flags] { return "\(name) / \(c)" }
        case 6:
            let codes: [UInt32: String] = [1: "EXC_I386_SGL", 2: "EXC_I386_BPT"]
            if let c = codes[e.flags] { return "\(name) / \(c)" }
        default: break
        }
        return String(format: "%@ / 0x%08x", name, e.flags)
    }
}
