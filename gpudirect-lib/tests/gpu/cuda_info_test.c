// SPDX-License-Identifier: MIT
/*
 * gpu tier: what the CUDA driver says about GPU N (default 0), and whether
 * libgpudirect's probe agrees with it. The driver's own answer to "can this
 * GPU export a dma-buf" is CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED (124): 1
 * with NVIDIA's open kernel modules, 0 with the proprietary one.
 * gpud_mem_probe(GPUD_MEM_CUDA) must say usable exactly when it is 1, and
 * -EOPNOTSUPP with the reason when it is 0.
 *
 * Prints (and writes to $GPUD_GPU_RESULTS/gpu_cuda_info.json) the driver
 * version, name, compute capability, memory, PCI bus id, the GPUDirect RDMA
 * attributes and the probe's text (BAR1 headroom from NVML). Skips (77)
 * without a usable GPU.
 */
#include "gpu_test.h"

#include <gpudirect/gpudirect.h>

#include <errno.h>

static int attr(CUdevice dev, CUdevice_attribute a)
{
	int v = -1;
	CUresult r = gt_cu.DeviceGetAttribute(&v, a, dev);

	/* an attribute this driver does not know reads as -1, not as a failure */
	return r == CUDA_SUCCESS ? v : -1;
}

int main(int argc, char **argv)
{
	int ordinal = argc > 1 ? atoi(argv[1]) : 0;
	char name[256] = "", bus[64] = "", why[512] = "";
	char jname[300], jbus[80], jwhy[600], json[2048];
	int drv = 0, cc_major, cc_minor, dmabuf, rdma, flush, order, vmm_rdma, probe;
	size_t mem = 0;
	CUdevice dev;

	gt_cuda_open(ordinal, &dev);
	GT_CU(gt_cu.DriverGetVersion(&drv));
	GT_CU(gt_cu.DeviceGetName(name, sizeof(name), dev));
	GT_CU(gt_cu.DeviceTotalMem(&mem, dev));
	GT_CU(gt_cu.DeviceGetPCIBusId(bus, sizeof(bus), dev));
	cc_major = attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
	cc_minor = attr(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
	dmabuf = attr(dev, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED);
	rdma = attr(dev, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED);
	flush = attr(dev, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_FLUSH_WRITES_OPTIONS);
	order = attr(dev, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WRITES_ORDERING);
	vmm_rdma = attr(dev, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED);

	t_log("driver: CUDA %d.%d", drv / 1000, drv % 1000 / 10);
	t_log("gpu %d: %s, compute capability %d.%d, %zu MiB, PCI %s", ordinal, name, cc_major,
	      cc_minor, mem >> 20, bus);
	t_log("DMA_BUF_SUPPORTED (124) = %d%s", dmabuf,
	      dmabuf == 1 ? " (open kernel modules: dma-buf export possible)" :
	      dmabuf == 0 ? " (no dma-buf export: proprietary kernel module?)" : " (unknown)");
	t_log("GPU_DIRECT_RDMA_SUPPORTED = %d, FLUSH_WRITES_OPTIONS = 0x%x, WRITES_ORDERING = %d, "
	      "RDMA_WITH_CUDA_VMM = %d", rdma, flush, order, vmm_rdma);

	probe = gpud_mem_probe(GPUD_MEM_CUDA, ordinal, why, sizeof(why));
	t_log("gpud_mem_probe(cuda:%d) = %d: %s", ordinal, probe, why);

	snprintf(json, sizeof(json),
		 "{\"driver_cuda_version\": %d, \"device\": %d, \"name\": %s, "
		 "\"compute_capability\": \"%d.%d\", \"mem_bytes\": %zu, \"pci_bus_id\": %s, "
		 "\"dma_buf_supported\": %d, \"gpu_direct_rdma_supported\": %d, "
		 "\"rdma_flush_writes_options\": %d, \"rdma_writes_ordering\": %d, "
		 "\"rdma_with_cuda_vmm\": %d, \"gpud_probe_rc\": %d, \"gpud_probe\": %s}",
		 drv, ordinal, gt_json_str(name, jname, sizeof(jname)), cc_major, cc_minor, mem,
		 gt_json_str(bus, jbus, sizeof(jbus)), dmabuf, rdma, flush, order, vmm_rdma, probe,
		 gt_json_str(why, jwhy, sizeof(jwhy)));
	gt_result("gpu_cuda_info", json);

	/* The library's verdict follows the driver's attribute, both ways. */
	if (dmabuf == 1) {
		T_ASSERT_EQ(0, probe);
	} else if (dmabuf == 0) {
		T_ASSERT_EQ(-EOPNOTSUPP, probe);
		T_ASSERT(strstr(why, "open kernel modules"));
	}
	if (!probe && !strstr(why, "BAR1"))
		T_FAIL("probe text names no BAR1 headroom (gpudirect.h promises it): \"%s\"", why);
	t_log("ok");
	return T_EXIT_PASS;
}
