#pragma once
// The perf-row names (the `op` and `metric` columns) that the tools read back from what the suites
// wrote: defined once, so a renamed row cannot silently drop out of dtbench-report or -compare.
// README "Perf CSV" documents each one.
namespace dtbench::perf_names {

// dtbench-ddp
inline constexpr const char* kDdpStep = "step";                    // op: one training step
inline constexpr const char* kDdpGradSync = "grad_sync";           // op: the bucketed grad sync
inline constexpr const char* kExposedComm = "exposed_comm";        // metric (us): comm not hidden
inline constexpr const char* kOverlapEfficiency = "overlap_efficiency";  // metric (fraction), ddp and fsdp
inline constexpr const char* kBestBucketSize = "best_bucket_size";  // metric (elements): the sweep's pick
// dtbench-fsdp
inline constexpr const char* kFsdpStep = "fsdp_step";  // op: one FSDP step
// dtbench-ep
inline constexpr const char* kTwoLevelSync = "two_level_sync";  // op: dense + expert grad sync
// dtbench-ckpt
inline constexpr const char* kSave = "save";                     // op: medians over the async saves
inline constexpr const char* kBlockingTime = "blocking_time";    // metric (ms)
inline constexpr const char* kTimeToDurableCommit = "time_to_durable_commit";  // metric (ms)
inline constexpr const char* kWriteBwAggregate = "write_bw_aggregate";          // metric (GB/s)
inline constexpr const char* kSaveTimeline = "save_timeline";    // op: one save's phase boundaries
inline constexpr const char* kBlockingEnd = "blocking_end";      // metric (ms from the save call)
inline constexpr const char* kWriteStart = "write_start";
inline constexpr const char* kWriteEnd = "write_end";
inline constexpr const char* kDurableCommit = "durable_commit";

}  // namespace dtbench::perf_names
