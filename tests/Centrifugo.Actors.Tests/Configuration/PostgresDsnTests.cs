using Centrifugo.Actors.Configuration;
using Npgsql;

namespace Centrifugo.Actors.Tests.Configuration;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PostgresDsnTests
{
    private static NpgsqlConnectionStringBuilder Convert(string dsn) => new(PostgresDsn.ToNpgsqlConnectionString(dsn));

    [Fact]
    public void Url_dsn_maps_user_password_host_port_database_and_query_parameters()
    {
        var b = Convert("postgres://alice:s%40cret@db.example:6432/orders?sslmode=require&connect_timeout=7&application_name=app" +
            "&pool_max_conns=12&pool_min_conns=2&search_path=outbox");
        Assert.Equal("alice", b.Username);
        Assert.Equal("s@cret", b.Password);
        Assert.Equal("db.example", b.Host);
        Assert.Equal(6432, b.Port);
        Assert.Equal("orders", b.Database);
        Assert.Equal(SslMode.Require, b.SslMode);
        Assert.Equal(7, b.Timeout);
        Assert.Equal("app", b.ApplicationName);
        Assert.Equal(12, b.MaxPoolSize);
        Assert.Equal(2, b.MinPoolSize);
        Assert.Equal("outbox", b.SearchPath);
    }

    [Fact]
    public void Postgresql_scheme_multiple_hosts_and_ipv6_are_understood()
    {
        var b = Convert("postgresql://u:p@h1:5433,h2:5434,[::1]:5435/db");
        Assert.Equal("h1:5433,h2:5434,[::1]:5435", b.Host);
        Assert.Equal("db", b.Database);
    }

    [Fact]
    public void Url_without_host_defaults_to_localhost_5432()
    {
        var b = Convert("postgres:///db");
        Assert.Equal("localhost", b.Host);
        Assert.Equal(5432, b.Port);
    }

    [Fact]
    public void Key_value_dsn_with_quoted_values_and_escapes_is_parsed()
    {
        var b = Convert(@"host=10.0.0.5 port=5433 user=bob password='it\'s a \\ secret' dbname = shop sslmode=verify-full");
        Assert.Equal("10.0.0.5", b.Host);
        Assert.Equal(5433, b.Port);
        Assert.Equal("bob", b.Username);
        Assert.Equal(@"it's a \ secret", b.Password);
        Assert.Equal("shop", b.Database);
        Assert.Equal(SslMode.VerifyFull, b.SslMode);
    }

    [Theory]
    [InlineData("disable", SslMode.Disable)]
    [InlineData("allow", SslMode.Allow)]
    [InlineData("prefer", SslMode.Prefer)]
    [InlineData("require", SslMode.Require)]
    [InlineData("verify-ca", SslMode.VerifyCA)]
    [InlineData("verify-full", SslMode.VerifyFull)]
    public void Every_libpq_sslmode_maps_to_the_npgsql_mode(string mode, SslMode expected) =>
        Assert.Equal(expected, Convert($"postgres://u@h/db?sslmode={mode}").SslMode);

    [Fact]
    public void Go_durations_of_pool_lifetimes_become_seconds()
    {
        var b = Convert("postgres://u@h/db?pool_max_conn_lifetime=1h30m&pool_max_conn_idle_time=45s");
        Assert.Equal(5400, b.ConnectionLifetime);
        Assert.Equal(45, b.ConnectionIdleLifetime);
    }

    [Fact]
    public void Pgx_only_pool_knobs_are_accepted_and_ignored() =>
        Assert.Equal("h", Convert("postgres://u@h/db?pool_health_check_period=1m&statement_cache_capacity=10").Host);

    [Theory]
    [InlineData("postgres://u:hunter2@h/db?bogus=1", "bogus")]
    [InlineData("host=h bogus=1 password=hunter2", "bogus")]
    [InlineData("postgres://u:hunter2@h/db?sslmode=hunter2", "sslmode")]
    [InlineData("postgres://u:hunter2@h/db?connect_timeout=hunter2", "connect_timeout")]
    [InlineData("host=h password='hunter2", "password")]
    public void Invalid_parameters_are_named_and_the_password_never_appears(string dsn, string parameter)
    {
        var e = Assert.Throws<FormatException>(() => PostgresDsn.ToNpgsqlConnectionString(dsn));
        Assert.Contains(parameter, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("host=h password=correct horse battery", "password")]
    [InlineData("host=h password=correct horse=battery", "password")]
    [InlineData("host=h password=correct horse='battery", "password")]
    [InlineData("host=h sslpassword=correct horse", "sslpassword")]
    public void An_unquoted_password_with_spaces_is_reported_without_any_word_of_it(string dsn, string parameter)
    {
        var e = Assert.Throws<FormatException>(() => PostgresDsn.ToNpgsqlConnectionString(dsn));
        Assert.Contains($"'{parameter}'", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("horse", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("battery", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://u:hunter2@h:5432/db?sslmode=disable", "postgres://u:***@h:5432/db?sslmode=disable")]
    [InlineData("postgresql://u:hun%40ter2@h/db", "postgresql://u:***@h/db")]
    [InlineData("postgres://u@h/db?password=hunter2&sslmode=require", "postgres://u@h/db?password=***&sslmode=require")]
    [InlineData("host=h user=u password=hunter2 dbname=d", "host=h user=u password=*** dbname=d")]
    [InlineData("host=h password='hunter2 with space' sslpassword=hunter2", "host=h password=*** sslpassword=***")]
    public void Redact_replaces_every_secret(string dsn, string expected) => Assert.Equal(expected, PostgresDsn.Redact(dsn));

    [Fact]
    public void Redact_of_unparsable_input_reveals_nothing() =>
        Assert.Equal("***", PostgresDsn.Redact("host=h password='hunter2"));
}
