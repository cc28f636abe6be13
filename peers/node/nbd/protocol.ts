// SPDX-License-Identifier: BSD-2-Clause
//
// peers/node/nbd/protocol.ts - the NBD wire protocol (newstyle, fixed): magic
// numbers, options, replies, commands, flags and error values, shared by the
// gateway (server.ts) and the client (client.ts). Everything on the wire is
// big-endian. See docs/nbd.md for what the gateway implements.

/** "NBDMAGIC": the first 8 bytes the server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n
/** "IHAVEOPT": after NBDMAGIC, and in front of every option the client sends. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n
/** In front of every option reply. */
export const NBD_REP_MAGIC = 0x0003e889045565a9n
/** In front of every transmission request (28 bytes). */
export const NBD_REQUEST_MAGIC = 0x25609513
/** In front of every simple reply (16 bytes). */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698
/** In front of every structured reply chunk (NBD_OPT_STRUCTURED_REPLY). */
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef

export const REQUEST_SIZE = 28
export const SIMPLE_REPLY_SIZE = 16

// Handshake flags (server, 16 bits) and client flags (32 bits).
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0
export const NBD_FLAG_NO_ZEROES = 1 << 1
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0
export const NBD_FLAG_C_NO_ZEROES = 1 << 1

// Transmission flags (16 bits).
export const NBD_FLAG_HAS_FLAGS = 1 << 0
export const NBD_FLAG_READ_ONLY = 1 << 1
export const NBD_FLAG_SEND_FLUSH = 1 << 2
export const NBD_FLAG_SEND_FUA = 1 << 3
export const NBD_FLAG_ROTATIONAL = 1 << 4
export const NBD_FLAG_SEND_TRIM = 1 << 5
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6
export const NBD_FLAG_SEND_DF = 1 << 7
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8
export const NBD_FLAG_SEND_RESIZE = 1 << 9
export const NBD_FLAG_SEND_CACHE = 1 << 10
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11

// Options.
export const NBD_OPT_EXPORT_NAME = 1
export const NBD_OPT_ABORT = 2
export const NBD_OPT_LIST = 3
export const NBD_OPT_PEEK_EXPORT = 4
export const NBD_OPT_STARTTLS = 5
export const NBD_OPT_INFO = 6
export const NBD_OPT_GO = 7
export const NBD_OPT_STRUCTURED_REPLY = 8
export const NBD_OPT_LIST_META_CONTEXT = 9
export const NBD_OPT_SET_META_CONTEXT = 10
export const NBD_OPT_EXTENDED_HEADERS = 11

// Option replies; errors have bit 31 set.
export const NBD_REP_ACK = 1
export const NBD_REP_SERVER = 2
export const NBD_REP_INFO = 3
export const NBD_REP_META_CONTEXT = 4
export const NBD_REP_FLAG_ERROR = 0x80000000
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3
export const NBD_REP_ERR_PLATFORM = NBD_REP_FLAG_ERROR + 4
export const NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR + 5
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7
export const NBD_REP_ERR_BLOCK_SIZE_REQD = NBD_REP_FLAG_ERROR + 8
export const NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR + 9

// NBD_REP_INFO types (the first 16 bits of its data).
export const NBD_INFO_EXPORT = 0
export const NBD_INFO_NAME = 1
export const NBD_INFO_DESCRIPTION = 2
export const NBD_INFO_BLOCK_SIZE = 3

/** The one metadata context (NBD_CMD_BLOCK_STATUS): allocated or a hole, reads as zeroes or not. */
export const BASE_ALLOCATION = 'base:allocation'
/** Its context id after NBD_OPT_SET_META_CONTEXT. */
export const BASE_ALLOCATION_ID = 1
/** base:allocation's flags in a block status descriptor. */
export const NBD_STATE_HOLE = 1 << 0
export const NBD_STATE_ZERO = 1 << 1

// Structured reply chunks.
export const NBD_REPLY_FLAG_DONE = 1 << 0
export const NBD_REPLY_TYPE_NONE = 0
export const NBD_REPLY_TYPE_OFFSET_DATA = 1
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5
export const NBD_REPLY_TYPE_ERROR = 32769
export const NBD_REPLY_TYPE_ERROR_OFFSET = 32770

// Commands.
export const NBD_CMD_READ = 0
export const NBD_CMD_WRITE = 1
export const NBD_CMD_DISC = 2
export const NBD_CMD_FLUSH = 3
export const NBD_CMD_TRIM = 4
export const NBD_CMD_CACHE = 5
export const NBD_CMD_WRITE_ZEROES = 6
export const NBD_CMD_BLOCK_STATUS = 7
export const NBD_CMD_RESIZE = 8

// Command flags.
export const NBD_CMD_FLAG_FUA = 1 << 0
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1
export const NBD_CMD_FLAG_DF = 1 << 2
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4
export const NBD_CMD_FLAG_PAYLOAD_LEN = 1 << 5

// Error values of replies (they are the Linux errno numbers).
export const NBD_EPERM = 1
export const NBD_EIO = 5
export const NBD_ENOMEM = 12
export const NBD_EINVAL = 22
export const NBD_ENOSPC = 28
export const NBD_EOVERFLOW = 75
export const NBD_ENOTSUP = 95
export const NBD_ESHUTDOWN = 108

/** NBD error values by name, and names by value. */
export const NBD_ERRORS: Readonly<Record<string, number>> = Object.freeze({
  EPERM: NBD_EPERM,
  EIO: NBD_EIO,
  ENOMEM: NBD_ENOMEM,
  EINVAL: NBD_EINVAL,
  ENOSPC: NBD_ENOSPC,
  EOVERFLOW: NBD_EOVERFLOW,
  ENOTSUP: NBD_ENOTSUP,
  ESHUTDOWN: NBD_ESHUTDOWN,
})

const NAMES = new Map<number, string>(Object.entries(NBD_ERRORS).map(([k, v]) => [v, k]))

/** The name of an NBD error value ('EIO'), or 'E<n>' for one outside the protocol. */
export function nbdErrorName(v: number): string {
  return NAMES.get(v) ?? `E${v}`
}

/**
 * The NBD error value for an xseg reply's errno name. Only the eight values of
 * the protocol may go on the wire; everything else (ECONNRESET from recovery,
 * ENOENT for a storage port nobody bound, EILSEQ...) is EIO.
 */
export function nbdErrorOf(code: string | undefined): number {
  switch (code) {
    case 'EPERM':
    case 'EACCES':
    case 'EROFS':
      return NBD_EPERM
    case 'ENOMEM':
    case 'ENOBUFS':
      return NBD_ENOMEM
    case 'EINVAL':
    case 'E2BIG':
      return NBD_EINVAL
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return NBD_ENOSPC
    case 'EOVERFLOW':
      return NBD_EOVERFLOW
    case 'ENOTSUP':
    case 'EOPNOTSUPP':
      return NBD_ENOTSUP
    case 'ESHUTDOWN':
      return NBD_ESHUTDOWN
    default:
      return NBD_EIO
  }
}

const CMD_NAMES = ['read', 'write', 'disc', 'flush', 'trim', 'cache', 'write_zeroes', 'block_status', 'resize']

/** A command's name for log lines ('read', 'cmd9'). */
export function commandName(type: number): string {
  return CMD_NAMES[type] ?? `cmd${type}`
}

const OPT_NAMES = ['', 'export_name', 'abort', 'list', 'peek_export', 'starttls', 'info', 'go', 'structured_reply',
  'list_meta_context', 'set_meta_context', 'extended_headers']

/** An option's name for log lines ('go', 'opt42'). */
export function optionName(opt: number): string {
  return OPT_NAMES[opt] || `opt${opt}`
}

/** Longest string the protocol allows (export names, descriptions). */
export const NBD_MAX_STRING = 4096
