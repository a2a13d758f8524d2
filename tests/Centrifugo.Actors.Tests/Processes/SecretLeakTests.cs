using System.Net;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>
/// Secrets (DSN password, API key) never reach stdout/stderr of <c>run</c> or <c>check-config</c>, whether they come
/// from the file or the environment, and also not on the error paths that are most tempted to print them.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class SecretLeakTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private const string ApiKey = "api-key-S3cret-7f3a9";
    private const string DsnPassword = "dsn-pw-S3cret-b81c2";
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(40);
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private static void AssertNoSecret(string output, params string[] secrets)
    {
        foreach (var secret in secrets)
        {
            Assert.False(output.Contains(secret, StringComparison.Ordinal), $"secret {secret[..6]}… printed:\n{output}");
        }
    }

    private NodeConfig Config(string dsn, string? apiKey = ApiKey) => new()
    {
        ApiUrl = _standIn.Url,
        ApiKey = apiKey,
        Consumers = [new PgConsumerConfig("pg_secret", dsn, "centrifugo_outbox")],
    };

    [Fact]
    public async Task Check_config_masks_the_secrets_of_the_file()
    {
        var dsn = $"postgres://app:{DsnPassword}@127.0.0.1:5432/app?sslmode=disable";

        var result = await NodeProcess.RunToExitAsync("check-config", Config(dsn).ToJson(), ExitBound);

        Assert.Equal(0, result.ExitCode);
        AssertNoSecret(result.Output, DsnPassword, ApiKey);
        Assert.Contains("\"key\": \"***\"", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("postgres://app:***@127.0.0.1:5432/app", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_masks_the_secrets_set_through_environment_overrides()
    {
        var env = new Dictionary<string, string?>
        {
            ["CENTRIFUGO_API_KEY"] = ApiKey,
            ["CENTRIFUGO_CONSUMERS_PG_SECRET_POSTGRESQL_DSN"] = $"host=10.1.2.3 port=6432 user=app password={DsnPassword} dbname=app",
        };

        var result = await NodeProcess.RunToExitAsync(
            "check-config", Config("postgres://file@127.0.0.1/app", apiKey: null).ToJson(), ExitBound, env);

        Assert.Equal(0, result.ExitCode);
        AssertNoSecret(result.Output, DsnPassword, ApiKey);
        Assert.Contains("\"key\": \"***\"", result.Stdout, StringComparison.Ordinal);
        // The override won (its host is shown) and its password is masked.
        Assert.Contains("10.1.2.3", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("***", result.Stdout.Split('\n').Single(l => l.Contains("\"dsn\"", StringComparison.Ordinal)),
            StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://app:" + DsnPassword + "@127.0.0.1:5432/app?sslmode=sometimes")]
    [InlineData("host=127.0.0.1 password=" + DsnPassword + " sslmode=sometimes")]
    [InlineData("host=127.0.0.1 password='" + DsnPassword)]
    [InlineData("postgres://app:" + DsnPassword + "@127.0.0.1:5432/app?bogus_param=1")]
    public async Task A_malformed_dsn_is_rejected_by_both_verbs_without_echoing_its_password(string dsn)
    {
        var env = new Dictionary<string, string?> { ["CENTRIFUGO_CONSUMERS_PG_SECRET_POSTGRESQL_DSN"] = dsn };
        var json = Config("postgres://file@127.0.0.1/app").ToJson();

        var check = await NodeProcess.RunToExitAsync("check-config", json, ExitBound, env);
        var run = await NodeProcess.RunToExitAsync("run", json, ExitBound, env);

        Assert.Equal(1, check.ExitCode);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("in consumer pg_secret (postgresql): dsn", check.Stderr, StringComparison.Ordinal);
        Assert.Contains("in consumer pg_secret (postgresql): dsn", run.Output, StringComparison.Ordinal);
        AssertNoSecret(check.Output + run.Output, DsnPassword, ApiKey);
    }

    [Fact]
    public async Task An_unreachable_database_at_start_does_not_print_the_password()
    {
        var port = NodeProcess.FreeTcpPort();
        var env = new Dictionary<string, string?>
        {
            ["CENTRIFUGO_CONSUMERS_PG_SECRET_POSTGRESQL_DSN"] = $"postgresql://app:{DsnPassword}@127.0.0.1:{port}/app",
        };

        var result = await NodeProcess.RunToExitAsync("run", Config("postgres://file@127.0.0.1/app").ToJson(), ExitBound, env);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"127.0.0.1:{port}", result.Output, StringComparison.Ordinal);
        AssertNoSecret(result.Output, DsnPassword, ApiKey);
    }

    [Fact]
    public async Task A_wrong_api_key_and_a_real_password_from_the_environment_never_reach_the_logs()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync([OutboxRows.Publish("secret:a", 0, 0)]);
        var config = Config("postgres://file@127.0.0.1/app", apiKey: null) with
        {
            Consumers = [new PgConsumerConfig("pg_secret", "postgres://file@127.0.0.1/app", name, Partitions: 1)],
        };
        var env = new Dictionary<string, string?>
        {
            ["CENTRIFUGO_API_KEY"] = ApiKey,                                       // not the stand-in's key: 401
            ["CENTRIFUGO_CONSUMERS_PG_SECRET_POSTGRESQL_DSN"] = pg.Instance.UrlDsn, // the real password
        };

        await using var node = config.Run("node-401", env);
        await node.WaitUntilAsync(async () => await node.GetAsync("/health/ready") is { Status: HttpStatusCode.ServiceUnavailable } r
            && r.Body.Contains("401", StringComparison.Ordinal), "readiness red with the 401", TimeSpan.FromSeconds(60));
        await node.WaitForOutputAsync("401", TimeSpan.FromSeconds(30));
        node.Terminate();
        Assert.Equal(0, await node.WaitForExitAsync(ExitBound));

        Assert.Equal(1, await table.CountAsync());
        Assert.True(_standIn.RequestsWithStatus(401) > 0);
        AssertNoSecret(node.Output, ApiKey, pg.Instance.Password);
    }
}
