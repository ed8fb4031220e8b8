"""The gateway: HubService on grpc.aio. Stateless: verifies, validates, starts and reads workflows."""
