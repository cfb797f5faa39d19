//! Error codes devices return, named. Where public sources disagree on a meaning, the
//! description gives both.

/// Generic login failure / interface not found.
pub const LOGIN_FAILURE: i64 = 268_632_064;
/// The login challenge (stage 1 always returns it).
pub const LOGIN_CHALLENGE: i64 = 268_632_079;
/// python-dhip: unknown user or wrong password; DahuaConsole: internal error.
pub const USER_OR_PASSWORD: i64 = 268_632_080;
/// The account is locked.
pub const ACCOUNT_LOCKED: i64 = 268_632_081;
/// python-dhip: user blocked.
pub const USER_BLOCKED: i64 = 268_632_082;
/// python-dhip: user already in use elsewhere.
pub const USER_IN_USE: i64 = 268_632_083;
/// Wrong user name or password.
pub const WRONG_PASSWORD: i64 = 268_632_085;
/// The device is not initialised.
pub const NOT_INITIALISED: i64 = 268_632_086;
/// The request could not be parsed.
pub const PARSE_ERROR: i64 = 268_894_208;
/// Invalid request: the method needs an `object` it did not get.
pub const OBJECT_MISSING: i64 = 268_894_209;
/// Method not found (python-dhip: insufficient permissions).
pub const METHOD_NOT_FOUND: i64 = 268_894_210;
/// Invalid parameters.
pub const INVALID_PARAM: i64 = 268_894_211;
/// Server internal error.
pub const INTERNAL_ERROR: i64 = 268_894_212;
/// "Unknown error! error code was not set in service!"
pub const UNKNOWN_ERROR: i64 = 268_959_743;
/// Authority check failure.
pub const AUTHORITY_CHECK: i64 = 285_278_249;
/// No data (e.g. a file search with no result; python-dhip: account does not exist).
pub const NO_DATA: i64 = 285_409_284;
/// python-dhip: account already exists.
pub const ACCOUNT_EXISTS: i64 = 285_409_285;
/// python-dhip: group does not exist.
pub const GROUP_MISSING: i64 = 285_409_296;
/// Invalid session (some firmware).
pub const INVALID_SESSION_0: i64 = 287_637_504;
/// "Invalid session in request data!"
pub const INVALID_SESSION: i64 = 287_637_505;
/// Method not allowed (python-dhip's fake device; some firmware).
pub const METHOD_NOT_ALLOWED: i64 = 405;

/// True for the codes that mean the session is gone (log in again).
pub fn is_invalid_session(code: i64) -> bool {
    matches!(code, INVALID_SESSION | INVALID_SESSION_0)
}

/// A short human description of `code`.
pub fn describe(code: i64) -> &'static str {
    match code {
        LOGIN_FAILURE => "login failure or interface not found",
        LOGIN_CHALLENGE => "login challenge",
        USER_OR_PASSWORD => "unknown user or wrong password (some firmware: internal error)",
        ACCOUNT_LOCKED => "account locked",
        USER_BLOCKED => "user blocked",
        USER_IN_USE => "user in use elsewhere",
        WRONG_PASSWORD => "user or password not valid",
        NOT_INITIALISED => "device not initialised",
        PARSE_ERROR => "request parse error",
        OBJECT_MISSING => "invalid request (missing or wrong object)",
        METHOD_NOT_FOUND => "method not found (or not permitted)",
        INVALID_PARAM => "invalid parameter",
        INTERNAL_ERROR => "device internal error",
        UNKNOWN_ERROR => "unknown error (not set by the service)",
        AUTHORITY_CHECK => "authority check failure (not permitted)",
        NO_DATA => "no data (python-dhip: account does not exist)",
        ACCOUNT_EXISTS => "account already exists",
        GROUP_MISSING => "group does not exist",
        INVALID_SESSION | INVALID_SESSION_0 => "invalid session",
        METHOD_NOT_ALLOWED => "method not allowed",
        400 => "bad request",
        401 => "unauthorised",
        403 => "forbidden",
        404 => "not found",
        500 => "device error (e.g. no storage)",
        _ => "unknown code",
    }
}
