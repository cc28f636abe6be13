// SPDX-License-Identifier: BSD-2-Clause
//
// sys/node/addon/fields.h - the field ids of req_field / req_set_field.
// The one list of them: req.cc switches on these, and sys/node/gen-consts.mjs
// turns this enum into F in sys/node/ts/consts.gen.ts (F_DATA_LEN -> F.DataLen).
// Add a field here, run `node sys/node/gen-consts.mjs`, commit both.
#ifndef XNODE_FIELDS_H
#define XNODE_FIELDS_H

enum xnode_field {
	F_OP = 0, F_FLAGS, F_STATE, F_ERROR, F_OFFSET, F_SIZE, F_SERVICED, F_DATA_LEN, F_SRC,
	F_DST, F_EFFECTIVE_DST, F_SERIAL, F_COOKIE, F_TARGET_LEN, F_TS_SUBMIT, F_TS_ACCEPT,
	F_TS_RESPOND, F_PATH_LEN, F_COUNT
};

/*
 * The words of one row of a batch table (batch.cc, sys/node/ts/batch.ts): a
 * Uint32Array of BATCH_ROW words per request. 64-bit values are two words,
 * low first. gen-consts.mjs turns this enum into B (B_DATA_LEN -> B.DataLen).
 */
enum xnode_batch_word {
	B_INDEX = 0, B_OP, B_FLAGS, B_STATE, B_ERROR, B_SIZE, B_DATA_LEN, B_SERVICED,
	B_OFFSET = 8, B_COOKIE = 10, B_DATA = 12, B_TARGET = 14, B_PORT = 15, BATCH_ROW = 16
};

#endif
