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

#endif
