using System.Net;
using System.Net.Sockets;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>A node that cannot work says why and exits 1 at once, instead of running without consuming.</summary>
public sealed class StartupFailureTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(40);

    [Fact]
    public async Task A_missing_outbox_table_stops_the_node_with_exit_1_naming_consumer_and_table()
    {
        var table = PostgresFixture.UniqueName("missing");
        var config = new NodeConfig
        {
            ApiUrl = "http://127.0.0.1:9/api",
            ApiKey = "startup-key",
            Consumers = [new PgConsumerConfig("pg_missing", pg.Instance.UrlDsn, table)],
        };

        var result = await NodeProcess.RunToExitAsync("run", config.ToJson(), ExitBound);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Output.Split('\n'), l => l.Contains("Cannot start", StringComparison.Ordinal));
        Assert.Contains("pg_missing", line, StringComparison.Ordinal);
        Assert.Contains($"outbox table \"{table}\" does not exist", line, StringComparison.Ordinal);
        Assert.DoesNotContain(pg.Instance.Password, result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_stops_the_node_with_exit_1_naming_consumer_and_host_port_but_not_the_password()
    {
        const string password = "unreachable-S3cret-pw";
        var port = NodeProcess.FreeTcpPort();   // nothing listens there
        var config = new NodeConfig
        {
            ApiUrl = "http://127.0.0.1:9/api",
            ApiKey = "startup-key",
            Consumers = [
                new PgConsumerConfig("pg_down", $"postgres://app:{password}@127.0.0.1:{port}/app?sslmode=disable", "centrifugo_outbox")],
        };

        var result = await NodeProcess.RunToExitAsync("run", config.ToJson(), ExitBound);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Output.Split('\n'), l => l.Contains("Cannot start", StringComparison.Ordinal));
        Assert.Contains("pg_down", line, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{port}", line, StringComparison.Ordinal);
        Assert.DoesNotContain(password, result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_admin_port_in_use_stops_the_node_with_exit_1_naming_the_address()
    {
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var config = new NodeConfig
        {
            ApiUrl = "http://127.0.0.1:9/api",
            ApiKey = "startup-key",
            Consumers = [new PgConsumerConfig("pg_admin", pg.Instance.UrlDsn, table.Name)],
            AdminPort = ((IPEndPoint)squatter.LocalEndpoint).Port,
        };

        var result = await NodeProcess.RunToExitAsync("run", config.ToJson(), ExitBound);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Output.Split('\n'), l => l.Contains("Cannot start", StringComparison.Ordinal));
        Assert.Contains($"admin endpoint 127.0.0.1:{config.AdminPort}", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", result.Output, StringComparison.Ordinal);
    }
}
