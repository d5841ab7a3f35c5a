/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The wgfleet authors */
/* macro: small compile-time helpers every module may use. */
#ifndef WGF_COMMON_MACRO_H
#define WGF_COMMON_MACRO_H

/*
 * The compiler counts, not the author: WGF_ARRAY_SIZE gives an array's length, and
 * fails to build when it is given a pointer instead (gcc and clang). WGF_STRINGS makes
 * an array of string pointers from a list and WGF_NSTRINGS counts the list, for
 * functions and tables that take an array and its length.
 */

#define WGF_ARRAY_SIZE(a)                                                                 \
	(sizeof(a) / sizeof((a)[0]) +                                                     \
	 0 * sizeof(struct {                                                              \
		 int not_an_array                                                         \
		     : !__builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0])); \
	 }))

#define WGF_STRINGS(...)  ((const char *const[]){__VA_ARGS__})
#define WGF_NSTRINGS(...) (sizeof(WGF_STRINGS(__VA_ARGS__)) / sizeof(const char *))

#endif
