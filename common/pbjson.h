/*
 * pbjson.h: any protobuf-c message as JSON, by reflection over its descriptor.
 *
 * Field names as in orch.proto; absent optional fields are omitted (so NULL
 * stays distinct from 0); enums by name; bytes as lower-case hex; 64-bit
 * integers as JSON integers. For tools, tests and debug endpoints. Pure; any
 * thread.
 */
#ifndef ORCH_PBJSON_H
#define ORCH_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* Returns a new JSON object (caller owns the reference), or NULL when out of memory. */
json_t *orch_pb_to_json(const ProtobufCMessage *m);

#endif
