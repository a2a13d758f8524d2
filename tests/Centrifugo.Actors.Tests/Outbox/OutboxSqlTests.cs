using Centrifugo.Actors.Outbox;

namespace Centrifugo.Actors.Tests.Outbox;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class OutboxSqlTests
{
    [Theory]
    [InlineData("outbox", "\"outbox\"")]
    [InlineData("MyOutbox", "\"myoutbox\"")]
    [InlineData("App.Outbox_1", "\"app\".\"outbox_1\"")]
    [InlineData("_x", "\"_x\"")]
    public void Table_names_are_folded_to_lower_case_and_quoted(string name, string quoted) =>
        Assert.Equal(quoted, OutboxSql.QuoteTableName(name));

    [Theory]
    [InlineData("")]
    [InlineData("1outbox")]
    [InlineData("out box")]
    [InlineData("outbox; DROP TABLE users")]
    [InlineData("a.b.c")]
    [InlineData("\"outbox\"")]
    [InlineData("outbox-1")]
    [InlineData("schema.")]
    public void Invalid_table_names_are_rejected_with_the_setting_named(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new OutboxSql(name, "dl"));
        Assert.Contains("outbox_table_name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_dead_letter_table_name_is_rejected() =>
        Assert.Contains("dead_letter_table_name", Assert.Throws<ArgumentException>(() => new OutboxSql("outbox", "dl;x")).Message,
            StringComparison.Ordinal);

    [Fact]
    public void Name_key_of_earlier_versions_is_pinned()
    {
        // Still taken besides the table's lock: it must never change, or a rolling upgrade from a version that only
        // took this key would run a partition twice.
        Assert.Equal(1402891518, OutboxLockKey.For("postgres_outbox"));
    }

    [Fact]
    public void Centrifugo_lock_name_is_its_prefix_the_consumer_name_and_the_partition()
    {
        Assert.Equal("centrifugo_partition_lock_pg0", OutboxLockKey.CentrifugoLockName("pg", 0));
        Assert.Equal("centrifugo_partition_lock_pg10", OutboxLockKey.CentrifugoLockName("pg", 10));
    }
}
