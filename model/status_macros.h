// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr (Abseil 20220623 has no
// status macros of its own). Errors cross module boundaries as absl::Status; never exceptions.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MSWA_CONCAT_INNER_(a, b) a##b
#define MSWA_CONCAT_(a, b) MSWA_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                                 \
  do {                                                        \
    ::absl::Status mswa_status_ = (expr);                     \
    if (!mswa_status_.ok()) return mswa_status_;              \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns x from an absl::StatusOr, or returns its
// error from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  MSWA_ASSIGN_OR_RETURN_IMPL_(MSWA_CONCAT_(mswa_statusor_, __LINE__), lhs, expr)
#define MSWA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) return statusor.status();          \
  lhs = std::move(statusor).value()
