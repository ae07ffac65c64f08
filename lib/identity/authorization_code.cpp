#include "identity/authorization_code.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include <array>
#include <stdexcept>

#include "http/http.h"

namespace g2m {

namespace {

// The OS CSPRNG (getrandom(2) blocks only before the kernel's pool is first initialised).
template <std::size_t N>
std::array<unsigned char, N> random_bytes() {
  std::array<unsigned char, N> out{};
  std::size_t got = 0;
  while (got < N) {
    const ssize_t n = getrandom(out.data() + got, N - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("getrandom failed");
    }
    got += static_cast<std::size_t>(n);
  }
  return out;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find_first_of("\r\n"));
}

}  // namespace

std::string base64url(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (auto& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string pkce_s256_challenge(const std::string& verifier) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  unsigned int length = 0;
  EVP_Digest(verifier.data(), verifier.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return base64url(digest.data(), length);
}

Pkce make_pkce() {
  const auto bytes = random_bytes<32>();
  Pkce p;
  p.verifier = Secret(base64url(bytes.data(), bytes.size()));
  p.challenge = pkce_s256_challenge(p.verifier.reveal());
  return p;
}

std::string make_state() {
  const auto bytes = random_bytes<16>();
  return base64url(bytes.data(), bytes.size());
}

std::string authorize_url(const AuthorizeRequest& r) {
  const std::string query = form_encode({{"client_id", r.client_id},
                                         {"response_type", "code"},
                                         {"redirect_uri", r.redirect_uri},
                                         {"response_mode", "query"},
                                         {"scope", r.scope},
                                         {"state", r.state},
                                         {"code_challenge", r.code_challenge},
                                         {"code_challenge_method", "S256"}});
  return r.endpoint + (r.endpoint.find('?') == std::string::npos ? "?" : "&") + query;
}

RedirectAnswer parse_redirect_address(const std::string& pasted) {
  const std::string text = trim(pasted);
  if (text.empty()) return RedirectProblem{"the address is empty"};
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f || c == ' ') {
      return RedirectProblem{
          "not a URL or query string (it contains spaces or control characters)"};
    }
  }
  std::string query;
  if (const auto q = text.find('?'); q != std::string::npos) {
    query = text.substr(q + 1);
  } else if (text.find("://") != std::string::npos) {
    return RedirectProblem{
        "the address has no code: paste the whole address the browser shows after signing in"};
  } else {
    query = text;
  }
  query = query.substr(0, query.find('#'));
  if (query.find('=') == std::string::npos) return RedirectProblem{"not a URL or query string"};

  std::string code, state, error, description;
  bool has_code = false, has_state = false, has_error = false;
  for (auto& [name, value] : form_decode(query)) {
    if (name == "code") {
      code = std::move(value);
      has_code = true;
    } else if (name == "state") {
      state = std::move(value);
      has_state = true;
    } else if (name == "error") {
      error = std::move(value);
      has_error = true;
    } else if (name == "error_description") {
      description = first_line(value);
    }
  }
  if (!has_state) {
    return RedirectProblem{"the address has no state: it is not the one this sign-in ended at"};
  }
  if (has_error && !error.empty()) {
    return RedirectError{std::move(error), std::move(description), std::move(state)};
  }
  if (!has_code || code.empty()) {
    return RedirectProblem{
        "the address has no code: paste the whole address the browser shows after signing in"};
  }
  return RedirectCode{Secret(std::move(code)), std::move(state)};
}

}  // namespace g2m
