#include "engine/outcome.h"

#include <gtest/gtest.h>

namespace rlmbox::engine {
namespace {

TEST(Outcome, NamesRoundTrip) {
  for (Outcome o : {Outcome::kOk, Outcome::kException, Outcome::kTimeout, Outcome::kFuelExhausted,
                    Outcome::kMemoryExceeded, Outcome::kOutputTruncated, Outcome::kCrashed}) {
    EXPECT_EQ(OutcomeFromName(OutcomeName(o)), o);
  }
  EXPECT_EQ(OutcomeName(Outcome::kFuelExhausted), "fuel_exhausted");
  EXPECT_FALSE(OutcomeFromName("nope").has_value());
}

}  // namespace
}  // namespace rlmbox::engine
