/* SPDX-License-Identifier: MIT */
/* All NCCL net-plugin ABI versions this plugin exports (v8..v12). */
#ifndef NCCLNET_NET_H
#define NCCLNET_NET_H

#include "types.h"
#include "net_v8.h"
#include "net_v9.h"
#include "net_v10.h"
#include "net_v11.h"
#include "net_v12.h"

#endif
