#pragma once
// The checkpoint format of dtbench-ckpt (Megatron-Core's megatron/core/dist_checkpointing), one
// header per concept; pure host code, no MPI (the suite gathers metadata and hands it to these):
//  * shapes          TensorShape, boxes, the exact-cover check
//  * sharded_piece   ShardedPiece (ShardedTensor metadata) and save-time validate_sharding
//  * fully_parallel  who writes each replicated shard (distribute_shards_to_ranks)
//  * index_format    CheckpointIndex, the global index file and its text format
//  * reshard_plan    intersect / copy_ranges / plan_read: the bytes a resharding load reads
//  * strict_keys     missing / unexpected keys (StrictHandling)
//  * element_values  closed-form element values (ckpt_value, fill_ckpt_values)
//  * writer_files    plan_writer_files: a rank's items into __<rank>_<k> files
#include "ckpt/element_values.h"
#include "ckpt/fully_parallel.h"
#include "ckpt/index_format.h"
#include "ckpt/reshard_plan.h"
#include "ckpt/shapes.h"
#include "ckpt/sharded_piece.h"
#include "ckpt/strict_keys.h"
#include "ckpt/writer_files.h"
