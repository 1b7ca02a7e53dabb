#include "engine/guest_reply.h"

#include <algorithm>

#include "base/bounded_json.h"

namespace rlmbox::engine {
namespace {

using nlohmann::json;

constexpr size_t kMaxTypeNameBytes = 256;

bool IsIdentifierLike(const std::string& name) {
  if (name.empty() || name.size() > kMaxLocalsNameBytes) return false;
  // Python identifiers may be non-ASCII; refuse only what no identifier holds.
  for (unsigned char ch : name) {
    if (ch < 0x30 && ch != '$') return false;  // controls, space, punctuation
  }
  return !(name[0] >= '0' && name[0] <= '9');
}

size_t DumpedSize(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace).size();
}

}  // namespace

bool TruncateUtf8(std::string& s, uint64_t max) {
  if (s.size() <= max) return false;
  auto cut = static_cast<size_t>(max);
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return true;
}

uint64_t MaxReplyBytes(uint64_t max_output_bytes) {
  // Five capped fields, each at most 6x when every byte is \u-escaped, and the
  // locals summary (256 names x 4 KiB) with room for the field names.
  const uint64_t locals = kMaxLocalsNames * (kMaxLocalsNameBytes + 4096 + 16);
  return 5 * 6 * max_output_bytes + locals + (64u << 10);
}

Result<GuestReply> DecodeExecuteReply(std::string_view bytes, uint64_t max_output_bytes,
                                      bool want_value) {
  if (bytes.size() > MaxReplyBytes(max_output_bytes)) {
    return InvalidArgument("the guest's reply is larger than the output cap allows");
  }
  auto parsed = ParseBoundedJson(bytes, kGuestJsonLimits, "the guest's reply");
  if (!parsed.ok()) return parsed.status();
  json& j = *parsed;
  if (!j.is_object()) return InvalidArgument("the guest's reply is not an object");

  GuestReply r;
  auto field = [&](const char* key) -> json* {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  auto malformed = [](const char* key) {
    return InvalidArgument(std::string("the guest's reply has a malformed '") + key + "'");
  };
  json* success = field("success");
  if (success == nullptr || !success->is_boolean()) return malformed("success");
  r.success = success->get<bool>();

  auto text = [&](const char* key, std::string* out) -> Status {
    json* f = field(key);
    if (f == nullptr) return Status::Ok();
    if (!f->is_string()) return malformed(key);
    *out = std::move(f->get_ref<std::string&>());
    return Status::Ok();
  };
  auto flag = [&](const char* key) -> Result<bool> {
    json* f = field(key);
    if (f == nullptr) return false;
    if (!f->is_boolean()) return malformed(key);
    return f->get<bool>();
  };
  RETURN_IF_ERROR(text("stdout", &r.stdout_text));
  RETURN_IF_ERROR(text("stderr", &r.stderr_text));
  for (const char* key : {"stdout_truncated", "stderr_truncated"}) {
    auto f = flag(key);
    if (!f.ok()) return f.status();
    r.truncated |= *f;
  }
  r.truncated |= TruncateUtf8(r.stdout_text, max_output_bytes);
  r.truncated |= TruncateUtf8(r.stderr_text, max_output_bytes);

  std::string error;
  RETURN_IF_ERROR(text("error", &error));
  if (field("error") != nullptr) {
    r.truncated |= TruncateUtf8(error, max_output_bytes);
    r.error = std::move(error);
  }
  RETURN_IF_ERROR(text("exception_type", &r.exception_type));
  if (r.exception_type.size() > kMaxTypeNameBytes) return malformed("exception_type");

  if (json* locals = field("locals")) {
    if (!locals->is_object()) return malformed("locals");
    uint64_t budget = max_output_bytes;
    for (auto& [name, value] : locals->items()) {
      if (!IsIdentifierLike(name)) return malformed("locals");
      const uint64_t cost = name.size() + DumpedSize(value);
      if (r.locals.size() >= kMaxLocalsNames || cost > budget) {
        r.locals_truncated = true;
        break;
      }
      budget -= cost;
      r.locals[name] = std::move(value);
    }
  }

  if (json* answer = field("answer")) {
    if (!answer->is_object()) return malformed("answer");
    auto ready = answer->find("ready");
    auto content = answer->find("content");
    if (ready != answer->end() && ready->is_boolean() && ready->get<bool>()) {
      if (content == answer->end() || !content->is_string()) return malformed("answer");
      std::string a = std::move(content->get_ref<std::string&>());
      r.truncated |= TruncateUtf8(a, max_output_bytes);
      r.final_answer = std::move(a);
    }
  }

  if (want_value) {
    if (auto it = j.find("value"); it != j.end()) {
      if (DumpedSize(*it) > max_output_bytes) {
        r.truncated = true;
        r.value = json(nullptr);
      } else {
        r.value = std::move(*it);
      }
    }
    RETURN_IF_ERROR(text("value_type", &r.value_type));
    if (r.value_type.size() > kMaxTypeNameBytes) return malformed("value_type");
  }
  return r;
}

}  // namespace rlmbox::engine
