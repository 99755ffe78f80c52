# What an emulate_nic netdevsim port records on received skbs (series patch
# 0013): the RX queue (skb_record_rx_queue), the RSS hash, and header split
# into the queue's page pool without a memory provider. Read through classic
# BPF filters on AF_PACKET sockets and the netdev genetlink page pool dump.
add_executable(nsim_nic_rx ${CMAKE_CURRENT_LIST_DIR}/nsim_nic_rx.c)
target_link_libraries(nsim_nic_rx PRIVATE gpud_devmem_testutil)
add_dependencies(gpud_kernel_vm_tests nsim_nic_rx)
gpud_add_vm_test(NAME nsim_nic_rx COMMAND nsim_nic_rx
  TIMEOUT ${GPUD_KP_TIMEOUT} LABELS kernel ${GPUD_KP_VM_ARGS})
