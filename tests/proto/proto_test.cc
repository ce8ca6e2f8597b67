#include <gtest/gtest.h>

#include <string>

#include "mswa/v1/mswa.grpc.pb.h"
#include "mswa/v1/mswa.pb.h"

namespace {

TEST(Proto, ServiceHasEveryRpc) {
  const auto* service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      mswa::v1::MswaService::service_full_name());
  ASSERT_NE(service, nullptr);
  for (const char* rpc : {"Generate", "Score", "ScoreStream", "Tokenize", "GetModelInfo"}) {
    EXPECT_NE(service->FindMethodByName(rpc), nullptr) << rpc;
  }
  EXPECT_TRUE(service->FindMethodByName("Generate")->server_streaming());
  EXPECT_TRUE(service->FindMethodByName("ScoreStream")->client_streaming());
  EXPECT_TRUE(service->FindMethodByName("ScoreStream")->server_streaming());
  EXPECT_FALSE(service->FindMethodByName("Score")->server_streaming());
}

TEST(Proto, GenerateRequestRoundTripsWithOptionalFields) {
  mswa::v1::GenerateRequest req;
  req.set_prompt("hello");
  req.mutable_sampling()->set_temperature(0.7f);
  req.mutable_sampling()->set_seed(42);
  req.mutable_stopping()->set_max_tokens(16);
  req.mutable_stopping()->add_stop("\n\n");
  std::string wire;
  ASSERT_TRUE(req.SerializeToString(&wire));
  mswa::v1::GenerateRequest back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.prompt(), "hello");
  EXPECT_TRUE(back.sampling().has_seed());
  EXPECT_EQ(back.sampling().seed(), 42u);
  EXPECT_FALSE(back.has_add_bos());  // unset optional stays distinguishable from false
  EXPECT_EQ(back.stopping().stop(0), "\n\n");
}

}  // namespace
