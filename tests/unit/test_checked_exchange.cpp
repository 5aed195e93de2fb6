// The checked-exchange frame: every way a fabric can damage a frame is seen by the receiver.
#include <gtest/gtest.h>

#include <string>

#include "core/checked_exchange.h"

namespace dtbench {
namespace {

std::string check(const std::string& frame, int source, uint64_t seq, std::string* payload = nullptr) {
  std::string p;
  return check_frame(frame.data(), frame.size(), source, seq, payload ? payload : &p);
}

const std::string kText = "layers.0.mlp.weight fp32 [64,32] [0,0] [32,32] __1_0 0 4096 0123456789abcdef\n";

TEST(CheckedExchange, IntactFramesCarryTheirPayload) {
  for (const std::string& text : {std::string(), std::string("x"), kText}) {
    const std::string f = make_frame(text, 5, 17);
    ASSERT_EQ(f.size(), kFrameHeader + text.size());
    std::string payload = "junk";
    EXPECT_EQ(check(f, 5, 17, &payload), "");
    EXPECT_EQ(payload, text);
  }
}

TEST(CheckedExchange, EveryFlippedBitIsSeen) {
  const std::string f = make_frame(kText, 3, 2);
  for (size_t byte = 0; byte < f.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = f;
      bad[byte] = char(bad[byte] ^ (1 << bit));
      EXPECT_NE(check(bad, 3, 2), "") << "byte " << byte << " bit " << bit;
    }
}

TEST(CheckedExchange, WrongSourceStaleAndTruncatedFramesAreNamed) {
  const std::string f = make_frame(kText, 1, 9);
  EXPECT_EQ(check(make_frame(kText, 0, 9), 1, 9), "the frame of rank 0 (a block from the wrong rank)");
  EXPECT_EQ(check(make_frame(kText, 1, 8), 1, 9), "the frame of exchange #8 in exchange #9 (stale data)");
  EXPECT_NE(check(make_frame(kText, 1, 10), 1, 9).find("exchange #10"), std::string::npos);
  // The same text from the right rank and call, but with its second half never delivered (zeros).
  std::string cut = f;
  for (size_t i = cut.size() / 2; i < cut.size(); ++i) cut[i] = '\0';
  EXPECT_NE(check(cut, 1, 9).find("xxh64"), std::string::npos);
  EXPECT_NE(check(f.substr(0, 10), 1, 9).find("shorter than its"), std::string::npos);
  EXPECT_EQ(check(std::string(f.size(), '\0'), 1, 9), "no frame header (misplaced or overwritten bytes)");
  // Rotated by 64 bytes: the header is somewhere else.
  EXPECT_NE(check(f.substr(64) + f.substr(0, 64), 1, 9), "");
  // A frame of another length (the hash covers the length): text with one byte fewer.
  std::string shorter = make_frame(kText.substr(1), 1, 9);
  shorter.insert(kFrameHeader, 1, kText[0]);
  EXPECT_NE(check(shorter, 1, 9), "");
}

}  // namespace
}  // namespace dtbench
