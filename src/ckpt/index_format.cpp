#include "ckpt/index_format.h"

#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <tuple>

namespace dtbench {

// --- index ---------------------------------------------------------------------------------------
std::string shard_file_name(int rank, int k) {
  return "__" + std::to_string(rank) + "_" + std::to_string(k);
}

uint64_t xxh64_checksum(const void* data, size_t bytes) { return XXH64(data, bytes, 0); }

IndexEntry make_index_entry(const ShardedPiece& piece, std::string file, int64_t byte_offset,
                            uint64_t checksum) {
  return {piece.key,       piece.dtype,     piece.global_shape, piece.global_offset,
          piece.box_shape(), std::move(file), byte_offset,        piece.bytes(),
          checksum};
}

namespace {

constexpr const char* kIndexMagic = "dtbench-ckpt-index";

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s[0] == '+') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "__<rank>_<k>" -> rank; false on anything else.
bool parse_file_name(const std::string& name, int64_t* rank) {
  if (name.rfind("__", 0) != 0) return false;
  const size_t sep = name.find('_', 2);
  int64_t k = 0;
  return sep != std::string::npos && parse_int(name.substr(2, sep - 2), rank) && *rank >= 0 &&
         parse_int(name.substr(sep + 1), &k) && k >= 0;
}

bool valid_key(const std::string& key) {
  return !key.empty() && std::none_of(key.begin(), key.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
  });
}

// Entry-local checks shared by the constructor and the parser (which adds the line number).
void check_entry(const IndexEntry& e, int world_size) {
  if (!valid_key(e.key)) throw CheckpointingError("key '" + e.key + "' is empty or has whitespace");
  const std::string of_key = " of key '" + e.key + "'";
  if (e.global_offset.size() != e.global_shape.size() || e.local_shape.size() != e.global_shape.size())
    throw CheckpointingError("global shape, global offset and local shape" + of_key +
                             " have different numbers of axes");
  for (size_t a = 0; a < e.global_shape.size(); ++a)
    if (e.global_shape[a] < 0 || e.local_shape[a] < 0 || e.global_offset[a] < 0 ||
        e.local_shape[a] > e.global_shape[a] - e.global_offset[a])
      throw CheckpointingError("piece at " + shape_str(e.global_offset) + " of shape " +
                               shape_str(e.local_shape) + of_key + " leaves global shape " +
                               shape_str(e.global_shape));
  // Element indices are int64 (the closed-form values and the resharding boxes use them).
  int64_t global_elements = 1;
  for (int64_t extent : e.global_shape)
    if (__builtin_mul_overflow(global_elements, extent, &global_elements))
      throw CheckpointingError("global shape " + shape_str(e.global_shape) + of_key +
                               " has more elements than int64 can count");
  int64_t rank = 0;
  if (!parse_file_name(e.file, &rank) || rank >= world_size)
    throw CheckpointingError("file name '" + e.file + "'" + of_key + " is not __<rank>_<k> with rank < " +
                             std::to_string(world_size));
  int64_t expected = 0;
  if (__builtin_mul_overflow(shape_numel(e.local_shape), int64_t(dtype_size(e.dtype)), &expected))
    throw CheckpointingError("piece of shape " + shape_str(e.local_shape) + of_key + " is too large");
  if (e.byte_offset < 0 || e.byte_length != expected)
    throw CheckpointingError("byte range offset " + std::to_string(e.byte_offset) + " length " +
                             std::to_string(e.byte_length) + of_key + ": expected offset >= 0 and " +
                             std::to_string(expected) + " bytes (" + dtype_name(e.dtype) + " " +
                             shape_str(e.local_shape) + ")");
}

std::string dims_field(const TensorShape& shape) {
  std::string s = "[";
  for (size_t a = 0; a < shape.size(); ++a) s += (a ? "," : "") + std::to_string(shape[a]);
  return s + "]";
}

bool parse_dims(const std::string& s, TensorShape* out) {
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') return false;
  out->clear();
  const std::string inner = s.substr(1, s.size() - 2);
  if (inner.empty()) return true;
  size_t pos = 0;
  while (true) {
    const size_t comma = inner.find(',', pos);
    int64_t v = 0;
    if (!parse_int(inner.substr(pos, comma - pos), &v) || v < 0) return false;
    out->push_back(v);
    if (comma == std::string::npos) return true;
    pos = comma + 1;
  }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    const size_t at = s.find(sep, pos);
    parts.push_back(s.substr(pos, at - pos));
    if (at == std::string::npos) return parts;
    pos = at + 1;
  }
}

}  // namespace

CheckpointIndex::CheckpointIndex(int world_size, int64_t step, std::vector<IndexEntry> entries)
    : CheckpointIndex(world_size, step, std::move(entries), {}) {}

CheckpointIndex::CheckpointIndex(int world_size, int64_t step, std::vector<IndexEntry> entries,
                                 std::vector<std::string> labels)
    : world_size_(world_size), step_(step) {
  if (world_size < 1) throw CheckpointingError("checkpoint index: world size must be >= 1");
  if (step < 0) throw CheckpointingError("checkpoint index: step must be >= 0");
  if (labels.empty())
    for (size_t i = 0; i < entries.size(); ++i) labels.push_back("entry " + std::to_string(i));
  for (size_t i = 0; i < entries.size(); ++i) {
    try {
      check_entry(entries[i], world_size);
    } catch (const std::runtime_error& e) {
      throw CheckpointingError(labels[i] + ": " + e.what());
    }
  }
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return std::tie(entries[x].key, entries[x].global_offset) <
           std::tie(entries[y].key, entries[y].global_offset);
  });
  for (size_t g = 0; g < order.size();) {  // one group of equal keys at a time
    const IndexEntry& first = entries[order[g]];
    std::vector<CoverBox> boxes;
    size_t i = g;
    for (; i < order.size() && entries[order[i]].key == first.key; ++i) {
      const IndexEntry& e = entries[order[i]];
      const std::string& label = labels[order[i]];
      if (e.dtype != first.dtype || e.global_shape != first.global_shape)
        throw CheckpointingError(label + ": key '" + e.key + "' is " + dtype_name(e.dtype) + " " +
                                 shape_str(e.global_shape) + " but " + labels[order[g]] + " says " +
                                 dtype_name(first.dtype) + " " + shape_str(first.global_shape));
      const IndexEntry* prev = i > g ? &entries[order[i - 1]] : nullptr;
      if (prev && e.global_offset == prev->global_offset && shape_numel(e.local_shape) &&
          shape_numel(prev->local_shape))
        throw CheckpointingError(label + ": duplicate piece of key '" + e.key + "' at global offset " +
                                 shape_str(e.global_offset) + " (also " + labels[order[i - 1]] + ")");
      boxes.push_back({e.global_offset, e.local_shape, label});
    }
    check_exact_cover(first.key, first.global_shape, "piece", boxes);
    g = i;
  }
  entries_.reserve(entries.size());
  for (size_t i : order) entries_.push_back(std::move(entries[i]));
}

std::string CheckpointIndex::serialize() const {
  std::ostringstream out;
  out << kIndexMagic << ' ' << kFormatVersion << '\n'
      << "world_size " << world_size_ << '\n'
      << "step " << step_ << '\n'
      << "pieces " << entries_.size() << '\n';
  for (const IndexEntry& e : entries_) out << index_entry_line(e);
  out << "end\n";
  return out.str();
}

std::string index_entry_line(const IndexEntry& e) {
  char checksum[17];
  std::snprintf(checksum, sizeof checksum, "%016llx", static_cast<unsigned long long>(e.checksum));
  return e.key + ' ' + dtype_name(e.dtype) + ' ' + dims_field(e.global_shape) + ' ' + dims_field(e.global_offset) +
         ' ' + dims_field(e.local_shape) + ' ' + e.file + ' ' + std::to_string(e.byte_offset) + ' ' +
         std::to_string(e.byte_length) + ' ' + checksum + '\n';
}

CheckpointIndex CheckpointIndex::parse(const std::string& text, const std::string& source) {
  std::vector<std::string> lines = split(text, '\n');
  if (lines.size() > 1 && lines.back().empty()) lines.pop_back();  // the final newline
  auto fail = [&](size_t line, const std::string& problem) {
    throw InputError(source + ":" + std::to_string(line + 1) + ": " + problem);
  };
  auto header = [&](size_t line, const char* name, int64_t min) {
    if (line >= lines.size()) fail(line, std::string("truncated: expected '") + name + " <n>'");
    const std::vector<std::string> f = split(lines[line], ' ');
    int64_t v = 0;
    if (f.size() != 2 || f[0] != name || !parse_int(f[1], &v) || v < min)
      fail(line, std::string("expected '") + name + " <integer >= " + std::to_string(min) +
                     ">', found '" + lines[line] + "'");
    return v;
  };

  const std::vector<std::string> magic = split(lines[0], ' ');
  if (magic.size() != 2 || magic[0] != kIndexMagic)
    fail(0, std::string("not a dtbench checkpoint index (expected '") + kIndexMagic + " " +
                std::to_string(kFormatVersion) + "')");
  int64_t version = 0;
  if (!parse_int(magic[1], &version) || version != kFormatVersion)
    fail(0, "unsupported index format version '" + magic[1] + "' (this build reads " +
                std::to_string(kFormatVersion) + ")");
  const int64_t world_size = header(1, "world_size", 1);
  if (world_size > INT32_MAX) fail(1, "world_size too large");
  const int64_t step = header(2, "step", 0);
  const int64_t count = header(3, "pieces", 0);

  std::vector<IndexEntry> entries;
  std::vector<std::string> labels;
  const size_t first = 4;
  for (int64_t n = 0; n < count; ++n) {
    const size_t line = first + size_t(n);
    if (line >= lines.size() || lines[line] == "end")
      fail(line, "truncated: expected " + std::to_string(count) + " piece lines, found " +
                     std::to_string(n));
    const std::vector<std::string> f = split(lines[line], ' ');
    if (f.size() != 9)
      fail(line, "expected 9 space-separated fields (key dtype global_shape global_offset "
                 "local_shape file byte_offset byte_length xxh64), found " +
                     std::to_string(f.size()));
    IndexEntry e;
    e.key = f[0];
    if (!parse_dtype(f[1], &e.dtype)) fail(line, "unknown dtype '" + f[1] + "'");
    if (!parse_dims(f[2], &e.global_shape)) fail(line, "bad global_shape '" + f[2] + "'");
    if (!parse_dims(f[3], &e.global_offset)) fail(line, "bad global_offset '" + f[3] + "'");
    if (!parse_dims(f[4], &e.local_shape)) fail(line, "bad local_shape '" + f[4] + "'");
    e.file = f[5];
    if (!parse_int(f[6], &e.byte_offset)) fail(line, "bad byte_offset '" + f[6] + "'");
    if (!parse_int(f[7], &e.byte_length)) fail(line, "bad byte_length '" + f[7] + "'");
    const bool hex = f[8].size() == 16 && std::all_of(f[8].begin(), f[8].end(), [](char c) {
                       return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                     });
    if (!hex) fail(line, "bad xxh64 '" + f[8] + "' (16 lowercase hex digits)");
    std::from_chars(f[8].data(), f[8].data() + 16, e.checksum, 16);
    try {
      check_entry(e, int(world_size));
    } catch (const std::runtime_error& err) {
      fail(line, err.what());
    }
    entries.push_back(std::move(e));
    labels.push_back("line " + std::to_string(line + 1));
  }
  const size_t end_line = first + size_t(count);
  if (end_line >= lines.size()) fail(end_line, "truncated: missing 'end' line");
  if (lines[end_line] != "end")
    fail(end_line, "expected 'end' after " + std::to_string(count) + " pieces, found '" +
                       lines[end_line] + "'");
  if (end_line + 1 < lines.size()) fail(end_line + 1, "unexpected content after 'end'");
  try {
    return CheckpointIndex(int(world_size), step, std::move(entries), std::move(labels));
  } catch (const CheckpointingError& err) {
    throw InputError(source + ": " + err.what());
  }
}

CheckpointIndex CheckpointIndex::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open checkpoint index '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError("cannot read checkpoint index '" + path + "'");
  return parse(text.str(), path);
}

std::vector<const IndexEntry*> CheckpointIndex::lookup(const std::string& key) const {
  auto lo = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const IndexEntry& e, const std::string& k) { return e.key < k; });
  auto hi = std::upper_bound(lo, entries_.end(), key,
                             [](const std::string& k, const IndexEntry& e) { return k < e.key; });
  std::vector<const IndexEntry*> found;
  for (auto it = lo; it != hi; ++it) found.push_back(&*it);
  return found;
}

std::set<std::string> CheckpointIndex::keys() const {
  std::set<std::string> keys;
  for (const IndexEntry& e : entries_) keys.insert(keys.end(), e.key);
  return keys;
}

}  // namespace dtbench
