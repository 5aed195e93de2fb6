// dtbench-ckpt's MPI-free parts: the layout's pieces, the durable commit files, one rank's
// background writer and the loader's reads and verifications.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "ckpt/ckpt_io.h"
#include "ckpt/ckpt_state.h"

using namespace dtbench;

namespace {

std::string temp_dir() {
  char t[] = "/tmp/dtbench-ckpt-unit.XXXXXX";
  EXPECT_NE(mkdtemp(t), nullptr);
  return t;
}

std::vector<std::vector<ShardedPiece>> all_ranks(const CkptLayout& l, int world) {
  std::vector<std::vector<ShardedPiece>> out;
  for (int r = 0; r < world; ++r) out.push_back(build_rank_state(l, world, r));
  return out;
}

}  // namespace

TEST(CkptState, UnevenRowsCoverEveryRowOnce) {
  for (int64_t rows : {0, 1, 5, 7, 8, 13}) {
    for (int parts = 1; parts <= 5; ++parts) {
      int64_t next = 0;
      for (int i = 0; i < parts; ++i) {
        int64_t b, e;
        uneven_rows(rows, parts, i, &b, &e);
        EXPECT_EQ(b, next);
        EXPECT_LE(b, e);
        next = e;
      }
      EXPECT_EQ(next, rows);
    }
  }
  int64_t b, e;
  uneven_rows(5, 4, 3, &b, &e);  // chunks of 2: [0,2) [2,4) [4,5) [5,5)
  EXPECT_EQ(b, 5);
  EXPECT_EQ(e, 5);
}

TEST(CkptState, EveryLayoutTilesEachKeyWithMainReplicas) {
  struct Case {
    int world, tp, pp;
    bool fsdp, adam;
  };
  for (Case c : {Case{1, 1, 1, false, true}, Case{4, 1, 1, false, true}, Case{4, 2, 1, true, true},
                 Case{4, 2, 2, false, false}, Case{3, 1, 1, true, true}, Case{8, 2, 2, true, true},
                 Case{6, 2, 1, false, true}}) {
    CkptLayout l;
    l.tp = c.tp, l.pp = c.pp, l.fsdp = c.fsdp, l.adam = c.adam, l.layers = 2, l.hidden = 8;
    ASSERT_NO_THROW(l.check(c.world));
    auto by_rank = all_ranks(l, c.world);
    EXPECT_NO_THROW(validate_sharding(by_rank)) << l.describe(c.world);
    EXPECT_TRUE(overlapping_main_ranks(by_rank).empty());
    // Saved bytes == the model's bytes (each element written exactly once).
    int64_t main_bytes = 0, keys_bytes = 0;
    std::map<std::string, int64_t> key_bytes;
    for (auto& pieces : by_rank)
      for (auto& p : pieces) {
        if (p.is_main_replica()) main_bytes += p.bytes();
        key_bytes[p.key] = shape_numel(p.global_shape) * int64_t(dtype_size(p.dtype));
      }
    for (auto& kv : key_bytes) keys_bytes += kv.second;
    EXPECT_EQ(main_bytes, keys_bytes) << l.describe(c.world);
  }
}

TEST(CkptState, Split1dWithEmptyRanks) {
  CkptLayout l;
  l.split1d = {5, 0, 5, 0};
  auto by_rank = all_ranks(l, 4);
  EXPECT_NO_THROW(validate_sharding(by_rank));
  const ShardedPiece& p2 = by_rank[2].back();
  EXPECT_EQ(p2.key, "split1d");
  EXPECT_EQ(p2.global_offset, (TensorShape{5}));
  EXPECT_EQ(p2.local_shape, (TensorShape{5}));
  EXPECT_EQ(by_rank[3].back().numel(), 0);
  l.split1d = {1, 2};
  EXPECT_THROW(l.check(4), ValueError);
}

TEST(CkptState, ChecksRejectSizesThatDoNotFit) {
  CkptLayout l;
  auto fields_at_fault = [&] {
    try {
      l.check(4);
    } catch (const ValueError& e) {
      return e.fields;
    }
    return std::string("none");
  };
  l.tp = 3;
  EXPECT_EQ(fields_at_fault(), "tp/pp");
  l.tp = 2, l.hidden = 33;
  EXPECT_EQ(fields_at_fault(), "hidden/tp");
  l.hidden = 32, l.pp = 2, l.layers = 3;
  EXPECT_EQ(fields_at_fault(), "layers/pp");
  l.layers = 4;
  EXPECT_EQ(fields_at_fault(), "none");
}

TEST(CkptState, PiecesRoundTripAndOverlapCulprits) {
  CkptLayout l;
  l.tp = 2, l.adam = true;
  auto pieces = build_rank_state(l, 4, 3);
  auto back = parse_pieces(serialize_pieces(pieces));
  ASSERT_EQ(back.size(), pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(back[i].key, pieces[i].key);
    EXPECT_EQ(back[i].global_offset, pieces[i].global_offset);
    EXPECT_EQ(back[i].local_shape, pieces[i].local_shape);
    EXPECT_EQ(back[i].replica_id, pieces[i].replica_id);
    EXPECT_EQ(back[i].prepend_axis_num, pieces[i].prepend_axis_num);
  }
  auto by_rank = all_ranks(l, 4);
  for (auto& p : by_rank[1])
    if (!p.is_main_replica()) {
      p.replica_id = {0};  // rank 1 claims a replica rank 0 (dp 0) writes
      break;
    }
  EXPECT_THROW(validate_sharding(by_rank), CheckpointingError);
  std::vector<int> culprits = overlapping_main_ranks(by_rank);
  EXPECT_NE(std::find(culprits.begin(), culprits.end(), 1), culprits.end());
}

TEST(CkptState, ValuesDependOnStep) {
  ShardedPiece p = build_rank_state(CkptLayout{}, 1, 0).front();
  std::vector<char> a(size_t(p.bytes())), b(a.size());
  fill_piece(p, 4, a.data());
  fill_piece(p, 8, b.data());
  EXPECT_NE(std::memcmp(a.data(), b.data(), a.size()), 0);
  int64_t n_wrong = 0;
  EXPECT_EQ(first_wrong_element(p, 4, a.data(), &n_wrong), -1);
  EXPECT_EQ(n_wrong, 0);
  a[9] ^= 1;  // element 2
  EXPECT_EQ(first_wrong_element(p, 4, a.data(), &n_wrong), 2);
  EXPECT_EQ(n_wrong, 1);
}

TEST(CkptIO, DurableFileAndCommitProtocol) {
  std::string root = temp_dir();
  make_dirs(root + "/" + step_dir_name(3));
  write_file_durable(root, "x", "hello");
  EXPECT_EQ(read_text_file(root + "/x"), "hello");
  EXPECT_FALSE(path_exists(root + "/x.tmp"));
  // A step directory without COMMIT is refused with a clear message.
  try {
    open_committed(root + "/step_3");
    FAIL() << "no throw";
  } catch (const CheckpointingError& e) {
    EXPECT_NE(std::string(e.what()).find("no COMMIT marker"), std::string::npos);
  }
  EXPECT_THROW(resolve_checkpoint_dir(root, -1), CheckpointingError);  // no latest yet
  remove_tree(root);
}

// One rank's pieces of a small model with Adam state (hidden 8, world 1).
static std::vector<ShardedPiece> small_adam_rank_state() {
  CkptLayout l;
  l.adam = true, l.hidden = 8;
  return build_rank_state(l, 1, 0);
}

TEST(CkptIO, RankWriterWritesReadsAndVerifies) {
  std::string root = temp_dir();
  std::vector<ShardedPiece> pieces = small_adam_rank_state();
  StagingBuffer staging;
  int64_t total = 0;
  for (int save = 0; save < 2; ++save) {
    RankWriter w(staging);
    const int64_t step = 10 + save;
    total = w.stage(0, pieces, 3, [&](size_t i, void* dst) { fill_piece(pieces[i], step, dst); });
    w.start(root + "/" + step_dir_name(step), WriterConfig{});
    w.wait();
    ASSERT_TRUE(w.done());
    ASSERT_EQ(w.result().error, "");
    EXPECT_EQ(w.result().bytes, total);
    EXPECT_EQ(w.result().entries.size(), pieces.size());
    CheckpointIndex index(1, step, w.result().entries);
    commit_checkpoint(root, step, index);
  }
  EXPECT_EQ(staging.allocations(), 1);  // allocated once, reused
  EXPECT_EQ(resolve_checkpoint_dir(root, -1), root + "/step_11");
  std::string dir = root + "/step_11";
  CheckpointIndex index = open_committed(dir);
  EXPECT_EQ(index.step(), 11);
  struct stat st;
  int files = 0;
  for (int k = 0; k < 4; ++k) files += ::stat((dir + "/" + shard_file_name(0, k)).c_str(), &st) == 0;
  EXPECT_EQ(files, 3);

  CheckpointReader reader(dir, index);
  LoadProblem problem;
  for (const IndexEntry& e : index.entries()) reader.verify_checksum(e, &problem);
  EXPECT_FALSE(problem.any()) << problem.message;
  // Resharded read: the second half of the embedding rows, as a piece of another layout.
  ShardedPiece req = pieces.front();
  req.global_offset = {req.global_shape[0] / 2, 0};
  req.local_shape = {req.global_shape[0] / 2, req.global_shape[1]};
  std::vector<char> buf(size_t(req.bytes()));
  std::vector<PieceRead> reads;
  EXPECT_EQ(reader.read_piece(req, buf.data(), &problem, &reads), req.bytes());
  int64_t n_wrong = 0;
  EXPECT_EQ(first_wrong_element(req, 11, buf.data(), &n_wrong), -1);
  EXPECT_EQ(culprit_of_element(req, reads, 0), 0);

  // A flipped byte: the checksum names the file and the byte offset.
  const IndexEntry& e = index.entries().back();
  std::string path = dir + "/" + e.file;
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(e.byte_offset + 5);
    char c;
    f.seekg(e.byte_offset + 5);
    f.get(c);
    f.seekp(e.byte_offset + 5);
    f.put(char(c ^ 0x40));
  }
  CheckpointReader reader2(dir, index);
  LoadProblem p2;
  reader2.verify_checksum(e, &p2);
  EXPECT_EQ(p2.offset, e.byte_offset + 5);
  EXPECT_EQ(p2.culprit, 0);
  EXPECT_NE(p2.message.find("checksum mismatch in " + path + " at byte offset"), std::string::npos) << p2.message;
  // Truncation: the file-size check names the first missing byte.
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  LoadProblem p3 = reader2.check_file_size(e.file);
  EXPECT_EQ(p3.offset, 100);
  EXPECT_NE(p3.message.find("is truncated"), std::string::npos);
  // A torn index (changed after COMMIT) is refused.
  {
    std::ofstream f(dir + "/index", std::ios::app);
    f << " ";
  }
  EXPECT_THROW(open_committed(dir), std::exception);
  remove_tree(root);
}

TEST(CkptIO, FailingWriterReportsAndNeverOverwrites) {
  std::string root = temp_dir();
  std::vector<ShardedPiece> pieces = build_rank_state(CkptLayout{}, 1, 0);
  StagingBuffer staging;
  RankWriter w(staging);
  w.stage(0, pieces, 2, [&](size_t i, void* dst) { fill_piece(pieces[i], 1, dst); });
  WriterConfig failing;
  failing.fail_writer = true;
  w.start(root + "/step_1", failing);
  w.wait();
  EXPECT_NE(w.result().error.find("rank 0: write " + root + "/step_1/__0_1 at byte offset"), std::string::npos)
      << w.result().error;
  // The data files are created exclusively: a second writer into the same directory fails.
  RankWriter w2(staging);
  w2.stage(0, pieces, 2, [&](size_t i, void* dst) { fill_piece(pieces[i], 1, dst); });
  WriterConfig plain;
  w2.start(root + "/step_1", plain);
  w2.wait();
  EXPECT_NE(w2.result().error.find("File exists"), std::string::npos) << w2.result().error;
  remove_tree(root);
}

// Background staging: the snapshot is what the state held when the copy ran; wait_staged() is the
// point after which the caller may change it. A held copy (the test hook) runs only once released,
// so a change made before that lands in the file, which the closed-form check then sees.
TEST(CkptIO, BackgroundStagingSnapshotsBeforeTheStateChanges) {
  std::string root = temp_dir();
  std::vector<ShardedPiece> pieces = small_adam_rank_state();
  std::vector<std::vector<char>> live(pieces.size());
  auto set_state = [&](int64_t step) {
    for (size_t i = 0; i < pieces.size(); ++i) {
      live[i].resize(size_t(pieces[i].bytes()));
      fill_piece(pieces[i], step, live[i].data());
    }
  };
  auto copy_out = [&](size_t i, void* dst) { std::memcpy(dst, live[i].data(), live[i].size()); };
  StagingBuffer staging;
  for (bool early : {false, true}) {
    const int64_t step = early ? 2 : 1;
    set_state(step);
    RankWriter w(staging);
    w.plan(0, pieces, 2);
    WriterConfig cfg;
    cfg.hold_staging = early;
    int copies_waited = 0;
    w.start(root + "/" + step_dir_name(step), cfg, copy_out, [&] { ++copies_waited; });
    if (early) {
      EXPECT_FALSE(w.staged());  // held: nothing copied yet
      set_state(step + 100);     // the optimizer step that should have waited
      w.release_staging();
    }
    w.wait_staged();
    EXPECT_TRUE(w.staged());
    set_state(step + 200);  // allowed now: the snapshot is complete
    w.wait();
    ASSERT_EQ(w.result().error, "");
    EXPECT_GE(copies_waited, 1);  // queued copies are waited for before their bytes are written
    EXPECT_GE(w.stage_seconds(), 0);
    commit_checkpoint(root, step, CheckpointIndex(1, step, w.result().entries));

    const std::string dir = root + "/" + step_dir_name(step);
    CheckpointIndex index = open_committed(dir);
    CheckpointReader reader(dir, index);
    int64_t wrong = 0;
    for (const ShardedPiece& p : pieces) {
      if (p.numel() == 0) continue;
      std::vector<char> buf(size_t(p.bytes()));
      LoadProblem problem;
      reader.read_piece(p, buf.data(), &problem);
      EXPECT_FALSE(problem.any()) << problem.message;
      int64_t n = 0;
      first_wrong_element(p, step, buf.data(), &n);
      wrong += n;
    }
    if (early) EXPECT_GT(wrong, 0) << "a change before the copy must reach the checkpoint";
    else EXPECT_EQ(wrong, 0) << "a change after wait_staged() must not reach the checkpoint";
  }
  EXPECT_EQ(staging.allocations(), 1);
  remove_tree(root);
}

// A staging copy that fails (a CUDA error on GPUs) fails the save on this rank with a clear message;
// the writers that wait for its bytes stop instead of hanging, and wait_staged() returns.
TEST(CkptIO, FailingStagingCopyFailsTheSaveWithoutHanging) {
  std::string root = temp_dir();
  std::vector<ShardedPiece> pieces = small_adam_rank_state();
  StagingBuffer staging;
  RankWriter w(staging);
  w.plan(0, pieces, 2);
  WriterConfig cfg;
  size_t copies = 0;
  w.start(root + "/step_1", cfg, [&](size_t i, void* dst) {
    if (++copies == 3) throw std::runtime_error("cudaMemcpyAsync (staging): an illegal memory access");
    fill_piece(pieces[i], 1, dst);
  }, nullptr);
  w.wait_staged();
  w.wait();
  EXPECT_TRUE(w.done());
  EXPECT_NE(w.result().error.find("rank 0: staging copy failed: cudaMemcpyAsync (staging): an illegal memory access"),
            std::string::npos) << w.result().error;
  remove_tree(root);
}
